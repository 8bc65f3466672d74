/*
 * images_state.c - what every images file shares and calls down to: the
 * bounded formatting of paths, the bundle-name rule, event delivery, the
 * downloads in flight (their progress) and the bundles VMs hold. It calls no
 * other images file.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images_int.h"

#define PROGRESS_EVERY_NS (100 * 1000 * 1000ULL) /* status events at most 10/s */

int img_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

bool img_valid_name(const char *name)
{
	/* no leading dot: "." and "..", and the hidden files the cache keeps
	 * beside its entries (.NAME.partial-XXXXXX, .preset-NAME, .lock) */
	if (!name || !*name || strlen(name) > 200 || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return false;
	return true;
}

void img_emit(svm_images *im, images_event ev, const char *id)
{
	pthread_mutex_lock(&im->mu);
	images_event_fn fn = im->hook;
	void *ud = im->hook_ud;
	pthread_mutex_unlock(&im->mu);
	if (fn)
		fn(ud, ev, id);
}

/* ------------------------------------------------------------ flights */

static img_flight *flight_locked(svm_images *im, const char *id)
{
	for (size_t i = 0; i < im->nflights; i++)
		if (!strcmp(im->flights[i].id, id))
			return &im->flights[i];
	return NULL;
}

void img_flight_begin(svm_images *im, const char *id)
{
	pthread_mutex_lock(&im->mu);
	img_flight *f = flight_locked(im, id);
	bool added = false;
	if (f) {
		f->refs++;
	} else {
		img_flight *nv = realloc(im->flights, (im->nflights + 1) * sizeof *nv);
		if (nv) {
			im->flights = nv;
			nv[im->nflights++] = (img_flight){.id = strdup(id), .refs = 1};
			added = true;
		}
	}
	pthread_mutex_unlock(&im->mu);
	if (added)
		img_emit(im, IMAGES_EV_ADDED, id);
	img_emit(im, IMAGES_EV_STATUS, id);
}

void img_flight_end(svm_images *im, const char *id)
{
	pthread_mutex_lock(&im->mu);
	img_flight *f = flight_locked(im, id);
	if (f && --f->refs == 0) {
		free(f->id);
		*f = im->flights[--im->nflights];
	}
	pthread_mutex_unlock(&im->mu);
	img_emit(im, IMAGES_EV_STATUS, id);
}

bool img_flight_active(svm_images *im, const char *id)
{
	pthread_mutex_lock(&im->mu);
	bool on = flight_locked(im, id) != NULL;
	pthread_mutex_unlock(&im->mu);
	return on;
}

void img_flight_progress(svm_images *im, const char *id, int which, uint64_t done,
			 uint64_t total)
{
	uint64_t now = svm_now_ns();
	bool emit = false;
	pthread_mutex_lock(&im->mu);
	img_flight *f = flight_locked(im, id);
	if (f) {
		bool changed = f->done[which] != done || f->total[which] != total;
		f->done[which] = done;
		f->total[which] = total;
		if (changed && (now - f->last_emit_ns >= PROGRESS_EVERY_NS || (total && done == total))) {
			f->last_emit_ns = now;
			emit = true;
		}
	}
	pthread_mutex_unlock(&im->mu);
	if (emit)
		img_emit(im, IMAGES_EV_STATUS, id);
}

/* ------------------------------------------------------------ uses and holds */

void images_hold(svm_images *im, const char *bundle_id)
{
	if (!bundle_id)
		return;
	pthread_mutex_lock(&im->mu);
	for (size_t i = 0; i < im->nholds; i++)
		if (!strcmp(im->holds[i].bundle_id, bundle_id)) {
			im->holds[i].count++;
			pthread_mutex_unlock(&im->mu);
			return;
		}
	img_hold *nv = realloc(im->holds, (im->nholds + 1) * sizeof *nv);
	if (nv) {
		im->holds = nv;
		nv[im->nholds++] = (img_hold){.bundle_id = strdup(bundle_id), .count = 1};
	}
	pthread_mutex_unlock(&im->mu);
}

void images_release(svm_images *im, const char *bundle_id)
{
	if (!bundle_id)
		return;
	pthread_mutex_lock(&im->mu);
	for (size_t i = 0; i < im->nholds; i++)
		if (!strcmp(im->holds[i].bundle_id, bundle_id)) {
			if (--im->holds[i].count == 0) {
				free(im->holds[i].bundle_id);
				im->holds[i] = im->holds[--im->nholds];
			}
			break;
		}
	pthread_mutex_unlock(&im->mu);
}

bool img_in_use(svm_images *im, const char *id)
{
	bool used = false;
	pthread_mutex_lock(&im->mu);
	for (size_t i = 0; i < im->nholds && !used; i++)
		used = !strcmp(im->holds[i].bundle_id, id);
	pthread_mutex_unlock(&im->mu);
	return used;
}

