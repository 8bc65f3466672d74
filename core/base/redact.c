/* redact.c - URL credentials out of shown text (see redact.h). */
#include <stdlib.h>
#include <string.h>

#include "redact.h"

char *redact_credentials(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *p = text;
	while (*p) {
		const char *scheme_end = strstr(p, "://");
		if (!scheme_end)
			break;
		const char *auth = scheme_end + 3;
		/* the authority ends at the first '/', blank or quote; its userinfo at '@' */
		size_t alen = strcspn(auth, "/ \t\n\"'?#");
		const char *at = memchr(auth, '@', alen);
		const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		const char *upto = colon ? colon + 1 : auth + alen;
		memcpy(out + o, p, (size_t)(upto - p));
		o += (size_t)(upto - p);
		if (colon) {
			/* "***" is never longer than what it replaces plus ":" and "@" */
			size_t pw = (size_t)(at - colon - 1);
			const char *stars = pw >= 3 ? "***" : pw == 2 ? "**" : pw == 1 ? "*" : "";
			memcpy(out + o, stars, strlen(stars));
			o += strlen(stars);
			p = at;
		} else {
			p = upto;
		}
	}
	strcpy(out + o, p);
	return out;
}
