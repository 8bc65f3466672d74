/*
 * config.h - the VM config model (internal to core).
 *
 * A config is a jansson object in the camelCase shape of the seed's IMicroVMConfig
 * (plus "image"). It is validated against a field table, and every Firecracker
 * snake_case payload is built from it. Functions never modify their input: callers
 * keep their documents (json_deep_copy where a copy is kept).
 */
#ifndef SVM_CONFIG_H
#define SVM_CONFIG_H

#include <jansson.h>
#include "smartvm.h"

/* Largest config.json text accepted (bigger: SVM_TOO_LARGE). */
#define SVM_CONFIG_MAX_BYTES SVM_DOC_MAX_BYTES

/* The config a new VM gets (a new reference). */
json_t *svm_config_default(void);

/* Parses text as a config document: a JSON object whose fields are all known
 * (an unknown field is INVALID_CONFIG naming it), types checked, then validated
 * with svm_config_validate. Returns a new reference, or NULL with err set
 * (INVALID_CONFIG for syntax/semantic errors with line:column for syntax,
 * TOO_LARGE above SVM_CONFIG_MAX_BYTES). */
json_t *svm_config_parse(const char *text, size_t len, svm_error *err);

/* The seed's VMConfig.validate(): returns the number of problems and, if errors is
 * not NULL, a new JSON array of their messages (seed wording, e.g.
 * "vsock.guestCid must be >= 3"). */
int svm_config_problems(const json_t *cfg, json_t **errors);
/* 0 if valid, else -1 with INVALID_CONFIG and the problems joined by "; ". */
int svm_config_validate(const json_t *cfg, svm_error *err);

/* What start needs on top of svm_config_validate: a kernel, from
 * bootSource.kernelImagePath or from "image". A stored config may lack both (the
 * default does), so this is asked at start, not at parse. 0 if bootable, else -1
 * with INVALID_CONFIG naming every problem (validation problems included). */
int svm_config_check_bootable(const json_t *cfg, svm_error *err);

/* Is text the beginning of a document that more bytes could complete? jansson's
 * "premature end of input", and also a text cut inside a token ("tru", "1e",
 * "\u00", half a UTF-8 character), which jansson calls a syntax error. False for
 * a complete document, any other error, and text over SVM_CONFIG_MAX_BYTES. The fs
 * layer buffers writes while this is true and fails the write otherwise. */
bool svm_config_text_incomplete(const char *text, size_t len);

/* Is id acceptable to Firecracker as a drive or interface id (it goes in the URL):
 * 1 to 64 letters, digits or underscores. */
bool svm_config_id_valid(const char *id);

/* Pretty text of a config document, newline-terminated (malloc'd). */
char *svm_config_dump(const json_t *cfg);

/* Firecracker payloads (new references; NULL when the section is absent). */
json_t *svm_payload_boot_source(const json_t *cfg);     /* PUT /boot-source */
json_t *svm_payload_machine_config(const json_t *cfg);  /* PUT /machine-config */
json_t *svm_payload_drive(const json_t *drive);         /* PUT /drives/{drive_id} */
json_t *svm_payload_network_interface(const json_t *iface); /* PUT /network-interfaces/{id} */
json_t *svm_payload_vsock(const json_t *cfg);           /* PUT /vsock */
json_t *svm_payload_balloon(const json_t *cfg);         /* PUT /balloon */
json_t *svm_payload_mmds_config(const json_t *cfg);     /* PUT /mmds/config */
json_t *svm_payload_logger(const json_t *cfg);          /* PUT /logger */
json_t *svm_payload_metrics(const json_t *cfg);         /* PUT /metrics */
json_t *svm_payload_entropy(const json_t *cfg);         /* PUT /entropy */
json_t *svm_payload_cpu_config(const json_t *cfg);      /* PUT /cpu-config (as written) */
json_t *svm_payload_memory_hotplug(const json_t *cfg);  /* PUT /hotplug/memory */
json_t *svm_payload_pmem(const json_t *pmem_entry);     /* PUT /pmem/{id} */
json_t *svm_payload_rate_limiter(const json_t *rl);     /* {bandwidth, ops} */
/* PATCH /network-interfaces/{id} body from {"rxRateLimiter":…,"txRateLimiter":…}
 * (camelCase); NULL + err if it has other fields or bad values. */
json_t *svm_payload_netif_update(const char *iface_id, const json_t *update, svm_error *err);

/* The host side of cfg's vsock (malloc'd): vsock.udsPath, or RUNDIR/vsock.sock; NULL
 * without a vsock device. */
char *svm_config_vsock_host_path(const json_t *cfg, const char *rundir);

#endif
