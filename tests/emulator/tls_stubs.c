/*
 * tls_stubs.c - for the static build of the emulator only (firecracker-emulator,
 * the one a jail can hold: a jail has no shared libraries). Debian's static
 * libmicrohttpd refers to GnuTLS for HTTPS, and no static p11-kit exists to
 * link a static GnuTLS. The emulator serves plain HTTP on a Unix socket and
 * never asks for TLS, so these entry points are never reached but at
 * libmicrohttpd's start (gnutls_global_init), which succeeds.
 */
int gnutls_alpn_set_protocols(void);
int gnutls_alpn_set_protocols(void)
{
	return 0;
}

int gnutls_bye(void);
int gnutls_bye(void)
{
	return 0;
}

int gnutls_certificate_allocate_credentials(void);
int gnutls_certificate_allocate_credentials(void)
{
	return 0;
}

int gnutls_certificate_free_credentials(void);
int gnutls_certificate_free_credentials(void)
{
	return 0;
}

int gnutls_certificate_server_set_request(void);
int gnutls_certificate_server_set_request(void)
{
	return 0;
}

int gnutls_certificate_set_dh_params(void);
int gnutls_certificate_set_dh_params(void)
{
	return 0;
}

int gnutls_certificate_set_retrieve_function2(void);
int gnutls_certificate_set_retrieve_function2(void)
{
	return 0;
}

int gnutls_certificate_set_retrieve_function3(void);
int gnutls_certificate_set_retrieve_function3(void)
{
	return 0;
}

int gnutls_certificate_set_x509_key_mem(void);
int gnutls_certificate_set_x509_key_mem(void)
{
	return 0;
}

int gnutls_certificate_set_x509_key_mem2(void);
int gnutls_certificate_set_x509_key_mem2(void)
{
	return 0;
}

int gnutls_certificate_set_x509_trust_mem(void);
int gnutls_certificate_set_x509_trust_mem(void)
{
	return 0;
}

int gnutls_cipher_get(void);
int gnutls_cipher_get(void)
{
	return 0;
}

int gnutls_credentials_set(void);
int gnutls_credentials_set(void)
{
	return 0;
}

int gnutls_deinit(void);
int gnutls_deinit(void)
{
	return 0;
}

int gnutls_dh_params_deinit(void);
int gnutls_dh_params_deinit(void)
{
	return 0;
}

int gnutls_dh_params_import_pkcs3(void);
int gnutls_dh_params_import_pkcs3(void)
{
	return 0;
}

int gnutls_dh_params_init(void);
int gnutls_dh_params_init(void)
{
	return 0;
}

int gnutls_global_deinit(void);
int gnutls_global_deinit(void)
{
	return 0;
}

int gnutls_global_init(void);
int gnutls_global_init(void)
{
	return 0;
}

int gnutls_handshake(void);
int gnutls_handshake(void)
{
	return 0;
}

int gnutls_init(void);
int gnutls_init(void)
{
	return 0;
}

int gnutls_priority_deinit(void);
int gnutls_priority_deinit(void)
{
	return 0;
}

int gnutls_priority_init(void);
int gnutls_priority_init(void)
{
	return 0;
}

int gnutls_priority_set(void);
int gnutls_priority_set(void)
{
	return 0;
}

int gnutls_protocol_get_version(void);
int gnutls_protocol_get_version(void)
{
	return 0;
}

int gnutls_psk_allocate_server_credentials(void);
int gnutls_psk_allocate_server_credentials(void)
{
	return 0;
}

int gnutls_psk_free_server_credentials(void);
int gnutls_psk_free_server_credentials(void)
{
	return 0;
}

int gnutls_psk_set_server_credentials_function(void);
int gnutls_psk_set_server_credentials_function(void)
{
	return 0;
}

int gnutls_record_check_pending(void);
int gnutls_record_check_pending(void)
{
	return 0;
}

int gnutls_record_get_direction(void);
int gnutls_record_get_direction(void)
{
	return 0;
}

int gnutls_record_recv(void);
int gnutls_record_recv(void)
{
	return 0;
}

int gnutls_record_send(void);
int gnutls_record_send(void)
{
	return 0;
}

int gnutls_session_get_ptr(void);
int gnutls_session_get_ptr(void)
{
	return 0;
}

int gnutls_session_set_ptr(void);
int gnutls_session_set_ptr(void)
{
	return 0;
}

int gnutls_strerror(void);
int gnutls_strerror(void)
{
	return 0;
}

int gnutls_transport_set_int2(void);
int gnutls_transport_set_int2(void)
{
	return 0;
}

/* a variable in GnuTLS, not a function */
void *gnutls_malloc;
