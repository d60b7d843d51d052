/*
 * password.c - password hashing and verification with libxcrypt.
 *
 * New hashes are yescrypt ("$y$", libxcrypt's default cost) unless the
 * configuration asks for SHA-512 crypt ("$6$") or bcrypt ("$2b$"); both are
 * there for accounts imported from other systems, which keep their hashes.
 * Verification accepts anything crypt_r() understands and compares the
 * result in constant time. Every buffer that held a password or a derived
 * hash is wiped before it is freed.
 *
 * password_random() makes app passwords: groups of four characters from an
 * alphabet without look-alikes (no i, l, o, 0, 1), e.g. "k7dm-vq2p-...".
 */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "groupware/auth.h"

/* bcrypt cost 2^10 and 100000 SHA-512 rounds: roughly the time libxcrypt's
 * default yescrypt cost takes, instead of the much weaker historic defaults
 * (bcrypt 2^5, 5000 rounds). */
#define BCRYPT_COST 10
#define SHA512_ROUNDS 100000

static const char *scheme_prefix(const char *scheme, unsigned long *count_r)
{
	*count_r = 0;
	if (scheme == NULL || *scheme == '\0' || strcmp(scheme, "yescrypt") == 0)
		return "$y$";
	if (strcmp(scheme, "sha512") == 0) {
		*count_r = SHA512_ROUNDS;
		return "$6$";
	}
	if (strcmp(scheme, "bcrypt") == 0) {
		*count_r = BCRYPT_COST;
		return "$2b$";
	}
	return NULL;
}

static void fill_random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			bu_panic("getrandom: %s", strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
}

/* crypt_r into a heap crypt_data; returns a heap copy of the hash or NULL
 * when crypt_r refused the setting. */
static char *crypt_dup(const char *password, const char *setting)
{
	struct crypt_data *cd = bu_malloc(sizeof(*cd));
	char *res = NULL;
	const char *out;

	out = crypt_r(password, setting, cd);
	/* libxcrypt signals failure with NULL or a "*0"/"*1" failure token */
	if (out != NULL && out[0] != '*' && out[0] != '\0')
		res = bu_strdup(out);
	bu_wipe(cd, sizeof(*cd));
	free(cd);
	return res;
}

char *password_hash(const char *password, const char *scheme)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned long count;
	const char *prefix = scheme_prefix(scheme, &count);
	char *res;

	if (prefix == NULL || password == NULL)
		return NULL;
	/* NULL rbytes: libxcrypt reads its own randomness (getrandom) */
	if (crypt_gensalt_rn(prefix, count, NULL, 0, salt, sizeof(salt)) == NULL) {
		/* older libxcrypt: hand it the random bytes ourselves */
		uint8_t rbytes[32];

		fill_random(rbytes, sizeof(rbytes));
		if (crypt_gensalt_rn(prefix, count, (const char *)rbytes, sizeof(rbytes),
				     salt, sizeof(salt)) == NULL) {
			bu_wipe(rbytes, sizeof(rbytes));
			return NULL;
		}
		bu_wipe(rbytes, sizeof(rbytes));
	}
	res = crypt_dup(password, salt);
	bu_wipe(salt, sizeof(salt));
	return res;
}

/* Constant-time for equal lengths; lengths of hashes of one setting do not
 * depend on the password. */
static bool ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	volatile uint8_t diff = (uint8_t)(la != lb);
	size_t n = la < lb ? la : lb;

	for (size_t i = 0; i < n; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

bool password_verify(const char *password, const char *hash)
{
	char *out;
	bool ok;

	if (password == NULL || hash == NULL || hash[0] == '\0' ||
	    hash[0] == '*' || hash[0] == '!')
		return false;
	out = crypt_dup(password, hash);
	if (out == NULL)
		return false;
	ok = ct_equal(out, hash);
	bu_wipe(out, strlen(out));
	free(out);
	return ok;
}

char *password_random(size_t n)
{
	/* 31 characters: no i, l, o, 0, 1 */
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
	const size_t alen = sizeof(alphabet) - 1;
	/* largest multiple of alen that fits a byte: rejection sampling keeps
	 * every character equally likely */
	const unsigned limit = (unsigned)(256 / alen * alen);
	char *out = bu_malloc(bu_size_add(n, 1));
	uint8_t pool[64];
	size_t used = sizeof(pool);

	for (size_t i = 0; i < n; i++) {
		/* a dash after every group of four, never at the end */
		if (i % 5 == 4 && i + 1 < n) {
			out[i] = '-';
			continue;
		}
		for (;;) {
			if (used == sizeof(pool)) {
				fill_random(pool, sizeof(pool));
				used = 0;
			}
			uint8_t b = pool[used++];
			if (b < limit) {
				out[i] = alphabet[b % alen];
				break;
			}
		}
	}
	out[n] = '\0';
	bu_wipe(pool, sizeof(pool));
	return out;
}
