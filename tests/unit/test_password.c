/*
 * test_password - hashing (yescrypt, SHA-512 crypt, bcrypt), verification
 * of hashes made by other tools, random app passwords. No database needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/auth.h"
#include "tests/unit/gwtest.h"

static void test_scheme(const char *scheme, const char *prefix)
{
	char *h1 = password_hash("correct horse battery staple", scheme);
	char *h2 = password_hash("correct horse battery staple", scheme);

	GW_CHECK(h1 != NULL && h2 != NULL);
	if (h1 == NULL || h2 == NULL)
		return;
	GW_CHECK(strncmp(h1, prefix, strlen(prefix)) == 0);
	GW_CHECK(strcmp(h1, h2) != 0);                  /* random salt */
	GW_CHECK(password_verify("correct horse battery staple", h1));
	GW_CHECK(password_verify("correct horse battery staple", h2));
	GW_CHECK(!password_verify("correct horse battery stapler", h1));
	GW_CHECK(!password_verify("", h1));
	GW_CHECK(!password_verify("Correct horse battery staple", h1));
	free(h1);
	free(h2);
}

/* Hashes made elsewhere: `openssl passwd -6` and the jBCrypt/OpenBSD
 * test vectors (published as $2a$; $2b$ is the same algorithm for
 * passwords under 255 bytes). */
struct known {
	const char *password;
	const char *hash;
};
static const struct known known_hashes[] = {
	{ "correct horse", "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Z"
	  "gw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0" },
	{ "Tr0ub4dor&3", "$6$rounds=10000$abcdefgh$TTbqHst1O2VaSDXZdww3BIRUl6PQ4El5Yo1hD"
	  "wvqNAJaehDeWOV3TP4O50a17zGqTrHT3PygDguNPvmQ7Je3v." },
	{ "Tr0ub4dor&3", "$6$abcdefghijklmnop$zZ/ChzaXovG3CegMiBIhobN050rhHdm71mnu47Tqi2"
	  "De/8NNVByniMNPmo.2zvpJxKr..LNYWXsPILSp3MgbO1" },
	{ "", "$2b$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s." },
	{ "abc", "$2b$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i" },
	{ "abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i" },
	{ "abcdefghijklmnopqrstuvwxyz",
	  "$2b$06$.rCVZVOThsIa97pEDOxvGuRRgzG64bvtJ0938xuqzv18d3ZpQhstC" },
};

static void test_known(void)
{
	for (size_t i = 0; i < BU_N_ELEMENTS(known_hashes); i++) {
		const struct known *k = &known_hashes[i];
		char wrong[64];

		GW_CHECK(password_verify(k->password, k->hash));
		snprintf(wrong, sizeof(wrong), "%sx", k->password);
		GW_CHECK(!password_verify(wrong, k->hash));
	}
	/* a damaged hash never verifies */
	GW_CHECK(!password_verify("abc", "$2b$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0j"));
	GW_CHECK(!password_verify("abc", "$2b$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0"));
}

static void test_garbage(void)
{
	GW_CHECK(!password_verify("x", NULL));
	GW_CHECK(!password_verify("x", ""));
	GW_CHECK(!password_verify("x", "*"));
	GW_CHECK(!password_verify("x", "!"));
	GW_CHECK(!password_verify("x", "!$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQ"));
	GW_CHECK(!password_verify("x", "$y$broken"));
	GW_CHECK(!password_verify("x", "$9$nope$nope"));
	GW_CHECK(!password_verify(NULL, "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQ"));
	GW_CHECK(password_hash("x", "md5") == NULL);
	GW_CHECK(password_hash("x", "plain") == NULL);
}

static bool in_alphabet(char c)
{
	return c != '\0' && strchr("abcdefghjkmnpqrstuvwxyz23456789", c) != NULL;
}

static void test_random(void)
{
	char *a = password_random(19), *b = password_random(19);
	int counts[256] = { 0 };

	GW_CHECK(strlen(a) == 19 && strlen(b) == 19);
	GW_CHECK(strcmp(a, b) != 0);
	for (size_t i = 0; i < 19; i++) {
		if (i % 5 == 4)
			GW_CHECK(a[i] == '-');
		else
			GW_CHECK(in_alphabet(a[i]));
	}
	free(a);
	free(b);

	a = password_random(0);
	GW_CHECK(strcmp(a, "") == 0);
	free(a);
	a = password_random(5);     /* never a trailing dash */
	GW_CHECK(strlen(a) == 5 && strchr(a, '-') == NULL);
	free(a);
	a = password_random(10);
	GW_CHECK(strlen(a) == 10 && a[4] == '-' && a[9] != '-');
	free(a);

	/* every character of the alphabet turns up, nothing else does */
	for (int i = 0; i < 200; i++) {
		a = password_random(4);
		for (size_t j = 0; j < 4; j++)
			counts[(unsigned char)a[j]]++;
		free(a);
	}
	for (int c = 0; c < 256; c++) {
		if (in_alphabet((char)c))
			GW_CHECK(counts[c] > 0);
		else
			GW_CHECK(counts[c] == 0);
	}
}

int main(void)
{
	test_scheme(NULL, "$y$");
	test_scheme("yescrypt", "$y$");
	test_scheme("sha512", "$6$rounds=");
	test_scheme("bcrypt", "$2b$10$");
	test_known();
	test_garbage();
	test_random();
	return gwtest_status();
}
