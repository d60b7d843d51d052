/*
 * bureauctl - the admin command line: domains, users, aliases, shared
 * mailboxes, resources, groups, rights and app passwords.
 *
 *   bureauctl [-c FILE] [--json] COMMAND ...     (bureauctl --help lists them)
 *
 * It reads bureau.conf (-c FILE, default /etc/bureau/bureau.conf; without
 * -c a missing default file means built-in defaults) and talks to the same
 * database as bureaud: database.url, or the embedded cluster that bureaud
 * runs in <state_dir>/pg. Every change goes through groupware/, so the
 * rules (address syntax, password policy, default folders) are the
 * daemon's.
 *
 * Exit status: 0 done; 1 bad input or not found (one line on stderr);
 * 2 usage error (usage on stderr); 3 the database cannot be reached.
 * --json prints the result of list, show and add commands as JSON on
 * stdout (other commands print {"ok": true}).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "groupware/acl.h"
#include "groupware/auth.h"
#include "groupware/collection.h"
#include "groupware/principal.h"
#include "server/core/config.h"
#include "server/core/db.h"
#include "server/core/log.h"

#define DEFAULT_CONFIG "/etc/bureau/bureau.conf"

enum {
	EXIT_OK = 0,
	EXIT_INPUT = 1,
	EXIT_USAGE = 2,
	EXIT_DB = 3,
};

static const char usage_text[] =
	"usage: bureauctl [-c FILE] [--json] COMMAND ...\n"
	"\n"
	"  domain add NAME\n"
	"  domain list\n"
	"  domain remove NAME [--force]\n"
	"  domain catchall DOMAIN ADDRESS|--none\n"
	"\n"
	"  user add ADDRESS --password PW|--password-stdin [--name \"Display\"]\n"
	"           [--quota-storage 1G] [--quota-messages N]\n"
	"  user list [DOMAIN]\n"
	"  user show ADDRESS\n"
	"  user passwd ADDRESS --password PW|--password-stdin\n"
	"  user disable|enable ADDRESS\n"
	"  user quota ADDRESS [--storage S] [--messages N]   (0 = unlimited)\n"
	"  user remove ADDRESS\n"
	"\n"
	"  alias add ALIAS TARGET\n"
	"  alias remove ALIAS\n"
	"  alias list [TARGET]\n"
	"\n"
	"  shared add ADDRESS [--name N] [--member ADDR ...]\n"
	"  shared remove ADDRESS\n"
	"  shared list\n"
	"  shared member add|remove SHARED ADDR [--rights lrswipkxtea]\n"
	"\n"
	"  resource add ADDRESS [--name N]\n"
	"  resource remove ADDRESS\n"
	"  resource list\n"
	"\n"
	"  group add ADDRESS [--name N]\n"
	"  group remove ADDRESS\n"
	"  group list\n"
	"  group members GROUP\n"
	"  group member add|remove GROUP MEMBER\n"
	"\n"
	"  grant OWNER[/COLLECTION] GRANTEE RIGHTS\n"
	"  revoke OWNER[/COLLECTION] GRANTEE\n"
	"  rights OWNER[/COLLECTION]\n"
	"      GRANTEE: an address, anyone or authenticated; RIGHTS: RFC 4314\n"
	"      letters lrswipkxtea (or all); COLLECTION: a mail folder, else a\n"
	"      calendar, address book or task list of that name\n"
	"\n"
	"  app-password add ADDRESS NAME      (prints the password once)\n"
	"  app-password list ADDRESS\n"
	"  app-password revoke ADDRESS ID\n"
	"\n"
	"Sizes take K, M, G or T suffixes (powers of 1024).\n"
	"Exit status: 0 ok, 1 bad input or not found, 2 usage, 3 database unreachable.\n";

/* ---- options -------------------------------------------------------- */

struct ctl;
static int connect_db(struct ctl *c);

enum opt_bit {
	O_PASSWORD = 1 << 0,
	O_PASSWORD_STDIN = 1 << 1,
	O_NAME = 1 << 2,
	O_QUOTA_STORAGE = 1 << 3,
	O_QUOTA_MESSAGES = 1 << 4,
	O_STORAGE = 1 << 5,
	O_MESSAGES = 1 << 6,
	O_FORCE = 1 << 7,
	O_NONE = 1 << 8,
	O_MEMBER = 1 << 9,
	O_RIGHTS = 1 << 10,
};

struct opt_def {
	const char *name;
	unsigned bit;
	bool takes_value;
};

static const struct opt_def opt_defs[] = {
	{ "--password", O_PASSWORD, true },
	{ "--password-stdin", O_PASSWORD_STDIN, false },
	{ "--name", O_NAME, true },
	{ "--quota-storage", O_QUOTA_STORAGE, true },
	{ "--quota-messages", O_QUOTA_MESSAGES, true },
	{ "--storage", O_STORAGE, true },
	{ "--messages", O_MESSAGES, true },
	{ "--force", O_FORCE, false },
	{ "--none", O_NONE, false },
	{ "--member", O_MEMBER, true },
	{ "--rights", O_RIGHTS, true },
};

#define MAX_POS 8

struct args {
	unsigned given;
	const char *value[BU_N_ELEMENTS(opt_defs)];
	const char **members;
	size_t n_members;
	const char *pos[MAX_POS];
	size_t n_pos;
};

struct ctl {
	struct bu_config cfg;
	bool cfg_loaded;
	char *conninfo;
	struct bu_db *db;
	struct bu_arena *a;
	bool json;
	char *password;      /* read from stdin: wiped and freed at exit */
};

/* the command being run, to show only its part of the usage */
static const char *usage_cmd;

static void usage_error(const char *fmt, ...) BU_PRINTF(1, 2) BU_NORETURN;
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	size_t n = usage_cmd != NULL ? strlen(usage_cmd) : 0;
	bool shown = false, in_cmd = false;

	fputs("bureauctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	if (usage_cmd != NULL) {
		/* the usage lines of this command (and their continuations) */
		for (const char *line = usage_text; *line != '\0';) {
			const char *end = strchr(line, '\n');
			size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

			if (len > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ')
				in_cmd = strncmp(line + 2, usage_cmd, n) == 0 &&
					(line[2 + n] == ' ' || line[2 + n] == '\n');
			if (in_cmd && len > 2 && line[2] == ' ') {
				fprintf(stderr, "     %.*s\n", (int)len, line);   /* continued */
			} else if (in_cmd && len > 0) {
				fprintf(stderr, "%s bureauctl %.*s\n", shown ? "      " : "usage:",
					(int)(len - 2), line + 2);
				shown = true;
			}
			line += len + (end != NULL ? 1 : 0);
		}
	}
	if (!shown)
		fputs(usage_text, stderr);
	else
		fputs("(bureauctl --help lists every command)\n", stderr);
	exit(EXIT_USAGE);
}

static int fail(const char *fmt, ...) BU_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("bureauctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_INPUT;
}

static size_t opt_index(unsigned bit)
{
	for (size_t i = 0; i < BU_N_ELEMENTS(opt_defs); i++) {
		if (opt_defs[i].bit == bit)
			return i;
	}
	bu_panic("unknown option bit %u", bit);
}

static const char *optv(const struct args *g, unsigned bit)
{
	return (g->given & bit) != 0 ? g->value[opt_index(bit)] : NULL;
}

/* Split argv into positionals and the options allowed for the command. */
static void parse_args(struct ctl *c, int argc, char **argv, unsigned allowed,
		       size_t min_pos, size_t max_pos, struct args *g)
{
	memset(g, 0, sizeof(*g));
	g->members = bu_arena_alloc(c->a, sizeof(char *) * (size_t)(argc + 1));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const struct opt_def *d = NULL;
		const char *eq;
		size_t nlen;

		if (strcmp(arg, "--json") == 0) {
			c->json = true;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			for (i++; i < argc; i++) {
				if (g->n_pos == MAX_POS)
					usage_error("too many arguments");
				g->pos[g->n_pos++] = argv[i];
			}
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (g->n_pos == MAX_POS)
				usage_error("too many arguments");
			g->pos[g->n_pos++] = arg;
			continue;
		}
		eq = strchr(arg, '=');
		nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (size_t k = 0; k < BU_N_ELEMENTS(opt_defs); k++) {
			if (strlen(opt_defs[k].name) == nlen &&
			    strncmp(opt_defs[k].name, arg, nlen) == 0)
				d = &opt_defs[k];
		}
		if (d == NULL || (allowed & d->bit) == 0)
			usage_error("unknown option %.*s for this command", (int)nlen, arg);
		if (!d->takes_value && eq != NULL)
			usage_error("%s takes no value", d->name);
		if (d->takes_value) {
			const char *v = eq != NULL ? eq + 1 : NULL;

			if (v == NULL) {
				if (i + 1 >= argc)
					usage_error("%s needs a value", d->name);
				v = argv[++i];
			}
			if (d->bit == O_MEMBER) {
				g->members[g->n_members++] = v;
			} else {
				if ((g->given & d->bit) != 0)
					usage_error("%s given twice", d->name);
				g->value[d - opt_defs] = v;
			}
		}
		g->given |= d->bit;
	}
	if (g->n_pos < min_pos)
		usage_error("missing argument");
	if (g->n_pos > max_pos)
		usage_error("unexpected argument '%s'", g->pos[max_pos]);
	/* The command line is good: only now reach for the database, so that a
	 * usage error is reported as one even when the database is down. */
	if (c->db == NULL && connect_db(c) != EXIT_OK)
		exit(EXIT_DB);
}

/* ---- small helpers -------------------------------------------------- */

/* "10", "512K", "1G", "1.5"? no: whole numbers only; "unlimited" = 0 */
static int parse_size(const char *s, int64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;
	size_t digits = 0;

	if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "none") == 0) {
		*out = 0;
		return 0;
	}
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (digits == 0)
		return -1;
	switch (*p) {
	case 'k': case 'K': mult = UINT64_C(1) << 10; p++; break;
	case 'm': case 'M': mult = UINT64_C(1) << 20; p++; break;
	case 'g': case 'G': mult = UINT64_C(1) << 30; p++; break;
	case 't': case 'T': mult = UINT64_C(1) << 40; p++; break;
	default: break;
	}
	if (mult > 1 && (strcasecmp(p, "b") == 0 || strcasecmp(p, "ib") == 0))
		p += strlen(p);
	else if (mult == 1 && strcasecmp(p, "b") == 0)
		p++;
	if (*p != '\0' || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

static int parse_count(const char *s, int64_t *out)
{
	uint64_t v;

	if (strcasecmp(s, "unlimited") == 0 || strcasecmp(s, "none") == 0) {
		*out = 0;
		return 0;
	}
	if (bu_parse_u64(s, strlen(s), INT64_MAX, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static char *fmt_size(struct bu_arena *a, int64_t v)
{
	static const char units[] = "KMGT";

	if (v == 0)
		return bu_arena_strdup(a, "unlimited");
	for (int i = 3; i >= 0; i--) {
		int64_t m = INT64_C(1) << (10 * (i + 1));

		if (v % m == 0)
			return bu_arena_printf(a, "%" PRId64 "%c", v / m, units[i]);
	}
	return bu_arena_printf(a, "%" PRId64, v);
}

static char *fmt_time(struct bu_arena *a, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0)
		return bu_arena_strdup(a, "never");
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return bu_arena_strdup(a, buf);
}

/* A library result to an exit status (the message is already in err). */
static int lib_status(struct ctl *c, int ret, const char *const *errp)
{
	const char *err = *errp;

	if (ret == 1)
		return EXIT_OK;
	if (ret < 0 && bu_db_errcode(c->db) == BU_DB_ERR_CONN) {
		fprintf(stderr, "bureauctl: lost the connection to the database: %s\n",
			bu_db_errmsg(c->db));
		return EXIT_DB;
	}
	return fail("%s", err != NULL ? err : "failed");
}

static int lib_error(struct ctl *c, const char *msg)
{
	return lib_status(c, -1, &msg);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(j);
}

static int done(struct ctl *c, const char *fmt, ...) BU_PRINTF(2, 3);
static int done(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	if (c->json) {
		print_json(json_pack("{s:b}", "ok", 1));
		return EXIT_OK;
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return EXIT_OK;
}

/* The password of --password or --password-stdin (one line). */
static const char *get_password(struct ctl *c, const struct args *g, bool required)
{
	char buf[1100];
	size_t n;

	if ((g->given & O_PASSWORD) != 0 && (g->given & O_PASSWORD_STDIN) != 0)
		usage_error("give either --password or --password-stdin");
	if ((g->given & O_PASSWORD) != 0) {
		/* argv strings are ours to change: keep a copy (wiped at exit)
		 * and let ps and /proc/PID/cmdline show x's from now on */
		char *arg = (char *)optv(g, O_PASSWORD);

		c->password = bu_strdup(arg);
		memset(arg, 'x', strlen(arg));
		return c->password;
	}
	if ((g->given & O_PASSWORD_STDIN) == 0) {
		if (required)
			usage_error("a password is needed: --password PW or --password-stdin");
		return NULL;
	}
	if (fgets(buf, sizeof(buf), stdin) == NULL) {
		fail("no password on standard input");
		exit(EXIT_INPUT);
	}
	n = strlen(buf);
	if (n == sizeof(buf) - 1 && buf[n - 1] != '\n' && !feof(stdin)) {
		/* not silently cut: the account would get another password */
		bu_wipe(buf, sizeof(buf));
		fail("the password on standard input is longer than %zu bytes",
		     sizeof(buf) - 2);
		exit(EXIT_INPUT);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	c->password = bu_strdup(buf);
	bu_wipe(buf, sizeof(buf));
	return c->password;
}

static json_t *principal_json(const struct principal *p)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:b, s:I, s:I, s:I}",
			 "id", (json_int_t)p->id, "address", p->address,
			 "kind", principal_kind_name(p->kind), "name", p->display_name,
			 "disabled", p->disabled, "quota_storage", (json_int_t)p->quota_storage,
			 "quota_messages", (json_int_t)p->quota_messages,
			 "created", (json_int_t)p->created);
}

static const char *kind_article(enum principal_kind k)
{
	switch (k) {
	case PRINCIPAL_USER:
		return "a user";
	case PRINCIPAL_SHARED:
		return "a shared mailbox";
	case PRINCIPAL_RESOURCE:
		return "a resource";
	case PRINCIPAL_GROUP:
		return "a group";
	}
	return "an account";
}

/* Look up address and insist on its kind (kind < 0: any). */
static int need_principal(struct ctl *c, const char *address, int kind,
			  struct principal **p_r)
{
	int ret = principal_lookup(c->db, c->a, address, p_r);

	if (ret < 0)
		return lib_error(c, "cannot look up the account");
	if (ret == 0)
		return fail("no such account: %s", address);
	if (kind >= 0 && (int)(*p_r)->kind != kind)
		return fail("%s is %s; use: bureauctl %s ...", (*p_r)->address,
			    kind_article((*p_r)->kind),
			    (*p_r)->kind == PRINCIPAL_USER ? "user"
			    : principal_kind_name((*p_r)->kind));
	return EXIT_OK;
}

/* ---- domain --------------------------------------------------------- */

static int cmd_domain(struct ctl *c, int argc, char **argv)
{
	const char *err = NULL;
	struct args g;
	int ret;

	if (argc < 1)
		usage_error("domain: add, list, remove or catchall?");
	if (strcmp(argv[0], "add") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		ret = lib_status(c, domain_add(c->db, g.pos[0], &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json) {
			char *lower = bu_arena_strdup(c->a, g.pos[0]);

			for (char *q = lower; *q != '\0'; q++) {
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q - 'A' + 'a');
			}
			print_json(json_pack("{s:s}", "domain", lower));
			return EXIT_OK;
		}
		return done(c, "added domain %s", g.pos[0]);
	}
	if (strcmp(argv[0], "list") == 0) {
		struct domain_info *d;
		size_t n;

		parse_args(c, argc - 1, argv + 1, 0, 0, 0, &g);
		ret = lib_status(c, domain_list(c->db, c->a, &d, &n, &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json) {
			json_t *arr = json_array();

			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, json_pack("{s:s, s:I, s:s?}",
					"name", d[i].name, "accounts", (json_int_t)d[i].accounts,
					"catchall", d[i].catchall));
			print_json(arr);
			return EXIT_OK;
		}
		for (size_t i = 0; i < n; i++) {
			printf("%-30s %6" PRId64 " account%s", d[i].name, d[i].accounts,
			       d[i].accounts == 1 ? " " : "s");
			if (d[i].catchall != NULL)
				printf("  catch-all %s", d[i].catchall);
			putchar('\n');
		}
		return EXIT_OK;
	}
	if (strcmp(argv[0], "remove") == 0) {
		parse_args(c, argc - 1, argv + 1, O_FORCE, 1, 1, &g);
		ret = lib_status(c, domain_remove(c->db, g.pos[0], (g.given & O_FORCE) != 0,
						  &err), &err);
		return ret != EXIT_OK ? ret : done(c, "removed domain %s", g.pos[0]);
	}
	if (strcmp(argv[0], "catchall") == 0) {
		parse_args(c, argc - 1, argv + 1, O_NONE, 1, 2, &g);
		if ((g.n_pos == 2) == ((g.given & O_NONE) != 0))
			usage_error("domain catchall DOMAIN ADDRESS, or DOMAIN --none");
		ret = lib_status(c, domain_set_catchall(c->db, g.pos[0],
							g.n_pos == 2 ? g.pos[1] : NULL, &err), &err);
		if (ret != EXIT_OK)
			return ret;
		return g.n_pos == 2 ? done(c, "mail to unknown addresses at %s goes to %s",
					   g.pos[0], g.pos[1])
			: done(c, "%s has no catch-all address", g.pos[0]);
	}
	usage_error("domain: unknown subcommand '%s'", argv[0]);
}

/* ---- accounts of every kind ----------------------------------------- */

static int add_principal(struct ctl *c, enum principal_kind kind, const struct args *g,
			 const char *password)
{
	struct principal_new pn = {
		.address = g->pos[0],
		.kind = kind,
		.password = password,
		.display_name = optv(g, O_NAME),
		.quota_storage = c->cfg.default_quota_storage,
		.quota_messages = c->cfg.default_quota_messages,
		.scheme = c->cfg.password_scheme,
		.min_password_length = c->cfg.min_password_length,
	};
	struct principal *p;
	const char *err = NULL;
	int64_t id = 0;
	int ret;

	if (kind == PRINCIPAL_GROUP) {
		pn.quota_storage = 0;
		pn.quota_messages = 0;
	}
	if (optv(g, O_QUOTA_STORAGE) != NULL &&
	    parse_size(optv(g, O_QUOTA_STORAGE), &pn.quota_storage) < 0)
		return fail("--quota-storage %s: not a size (e.g. 500M, 2G, 0 = unlimited)",
			    optv(g, O_QUOTA_STORAGE));
	if (optv(g, O_QUOTA_MESSAGES) != NULL &&
	    parse_count(optv(g, O_QUOTA_MESSAGES), &pn.quota_messages) < 0)
		return fail("--quota-messages %s: not a whole number (0 = unlimited)",
			    optv(g, O_QUOTA_MESSAGES));
	/* shared mailbox members must exist before anything is created */
	for (size_t i = 0; i < g->n_members; i++) {
		ret = need_principal(c, g->members[i], -1, &p);
		if (ret != EXIT_OK)
			return ret;
	}
	ret = lib_status(c, principal_add(c->db, &pn, &id, &err), &err);
	if (ret != EXIT_OK)
		return ret;
	for (size_t i = 0; i < g->n_members; i++) {
		ret = lib_status(c, member_add(c->db, pn.address, g->members[i], NULL, &err), &err);
		if (ret != EXIT_OK)
			return ret;
	}
	if (principal_get(c->db, c->a, id, &p) != 1)
		return lib_error(c, "the new account vanished");
	if (c->json) {
		{
			json_t *j = principal_json(p);

			if (g->n_members > 0) {
				json_t *m = json_array();

				for (size_t i = 0; i < g->n_members; i++)
					json_array_append_new(m, json_string(g->members[i]));
				json_object_set_new(j, "members", m);
			}
			print_json(j);
		}
		return EXIT_OK;
	}
	return done(c, "added %s %s", principal_kind_name(kind), p->address);
}

static int remove_principal(struct ctl *c, enum principal_kind kind, const char *address)
{
	struct principal *p;
	const char *err = NULL;
	int ret = need_principal(c, address, (int)kind, &p);

	if (ret != EXIT_OK)
		return ret;
	ret = lib_status(c, principal_remove(c->db, address, &err), &err);
	return ret != EXIT_OK ? ret : done(c, "removed %s %s", principal_kind_name(kind), address);
}

static int list_principals(struct ctl *c, const char *domain, int kind)
{
	struct principal *list;
	const char *err = NULL;
	size_t n;
	int ret = lib_status(c, principal_list(c->db, c->a, domain, kind, &list, &n, &err), &err);

	if (ret != EXIT_OK)
		return ret;
	if (c->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, principal_json(&list[i]));
		print_json(arr);
		return EXIT_OK;
	}
	for (size_t i = 0; i < n; i++) {
		fputs(list[i].address, stdout);
		if (list[i].disabled || list[i].display_name[0] != '\0' ||
		    list[i].quota_storage != 0 || list[i].quota_messages != 0)
			printf("%*s", strlen(list[i].address) < 40
			       ? (int)(40 - strlen(list[i].address)) : 1, "");
		if (list[i].disabled)
			printf(" [disabled]");
		if (kind == PRINCIPAL_USER && (list[i].quota_storage != 0 ||
					       list[i].quota_messages != 0))
			printf(" quota %s/%s", fmt_size(c->a, list[i].quota_storage),
			       list[i].quota_messages == 0 ? "unlimited"
			       : bu_arena_printf(c->a, "%" PRId64 " messages",
						 list[i].quota_messages));
		if (list[i].display_name[0] != '\0')
			printf(" \"%s\"", list[i].display_name);
		putchar('\n');
	}
	return EXIT_OK;
}

static int show_user(struct ctl *c, const char *address)
{
	struct principal *p, *g;
	struct collection *colls;
	struct app_password *aps;
	const char *err = NULL;
	char **aliases, **members = NULL;
	int64_t *groups;
	size_t n_aliases, n_colls, n_groups, n_aps, n_members = 0;
	int ret = need_principal(c, address, -1, &p);

	if (ret != EXIT_OK)
		return ret;
	if (alias_list(c->db, c->a, p->address, &aliases, &n_aliases, &err) < 0 ||
	    collection_list(c->db, c->a, p->id, -1, &colls, &n_colls) < 0 ||
	    principal_groups(c->db, c->a, p->id, &groups, &n_groups) < 0 ||
	    app_password_list(c->db, c->a, p->address, &aps, &n_aps, &err) < 0 ||
	    ((p->kind == PRINCIPAL_GROUP || p->kind == PRINCIPAL_SHARED) &&
	     member_list(c->db, c->a, p->address, &members, &n_members, &err) < 0))
		return lib_error(c, err != NULL ? err : "database error");
	if (c->json) {
		json_t *j = principal_json(p), *arr;

		arr = json_array();
		for (size_t i = 0; i < n_aliases; i++)
			json_array_append_new(arr, json_string(aliases[i]));
		json_object_set_new(j, "aliases", arr);
		arr = json_array();
		for (size_t i = 0; i < n_groups; i++) {
			if (principal_get(c->db, c->a, groups[i], &g) == 1)
				json_array_append_new(arr, json_string(g->address));
		}
		json_object_set_new(j, "groups", arr);
		if (members != NULL) {
			arr = json_array();
			for (size_t i = 0; i < n_members; i++)
				json_array_append_new(arr, json_string(members[i]));
			json_object_set_new(j, "members", arr);
		}
		arr = json_array();
		for (size_t i = 0; i < n_colls; i++)
			json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s?}",
				"id", (json_int_t)colls[i].id,
				"kind", collection_kind_name(colls[i].kind),
				"name", colls[i].name, "special_use", colls[i].special_use));
		json_object_set_new(j, "collections", arr);
		json_object_set_new(j, "app_passwords", json_integer((json_int_t)n_aps));
		print_json(j);
		return EXIT_OK;
	}
	printf("address:        %s\n", p->address);
	printf("kind:           %s\n", principal_kind_name(p->kind));
	printf("name:           %s\n", p->display_name);
	printf("disabled:       %s\n", p->disabled ? "yes" : "no");
	printf("quota storage:  %s\n", fmt_size(c->a, p->quota_storage));
	printf("quota messages: %s\n", p->quota_messages == 0 ? "unlimited"
	       : bu_arena_printf(c->a, "%" PRId64, p->quota_messages));
	printf("created:        %s\n", fmt_time(c->a, p->created));
	printf("aliases:       ");
	for (size_t i = 0; i < n_aliases; i++)
		printf(" %s", aliases[i]);
	printf("\ngroups:        ");
	for (size_t i = 0; i < n_groups; i++) {
		if (principal_get(c->db, c->a, groups[i], &g) == 1)
			printf(" %s", g->address);
	}
	if (members != NULL) {
		printf("\nmembers:       ");
		for (size_t i = 0; i < n_members; i++)
			printf(" %s", members[i]);
	}
	printf("\napp passwords:  %zu\n", n_aps);
	printf("collections:\n");
	for (size_t i = 0; i < n_colls; i++)
		printf("  %-12s %s%s%s\n", collection_kind_name(colls[i].kind), colls[i].name,
		       colls[i].special_use != NULL ? " " : "",
		       colls[i].special_use != NULL ? colls[i].special_use : "");
	return EXIT_OK;
}

static int cmd_user(struct ctl *c, int argc, char **argv)
{
	const char *err = NULL;
	struct args g;
	int ret;

	if (argc < 1)
		usage_error("user: add, list, show, passwd, disable, enable, quota or remove?");
	if (strcmp(argv[0], "add") == 0) {
		parse_args(c, argc - 1, argv + 1, O_PASSWORD | O_PASSWORD_STDIN | O_NAME |
			   O_QUOTA_STORAGE | O_QUOTA_MESSAGES, 1, 1, &g);
		return add_principal(c, PRINCIPAL_USER, &g, get_password(c, &g, true));
	}
	if (strcmp(argv[0], "list") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 0, 1, &g);
		return list_principals(c, g.n_pos > 0 ? g.pos[0] : NULL, PRINCIPAL_USER);
	}
	if (strcmp(argv[0], "show") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		return show_user(c, g.pos[0]);
	}
	if (strcmp(argv[0], "passwd") == 0) {
		parse_args(c, argc - 1, argv + 1, O_PASSWORD | O_PASSWORD_STDIN, 1, 1, &g);
		const char *pw = get_password(c, &g, true);
		ret = lib_status(c, principal_set_password(c->db, g.pos[0], pw,
							   c->cfg.password_scheme,
							   c->cfg.min_password_length, &err), &err);
		return ret != EXIT_OK ? ret : done(c, "changed the password of %s", g.pos[0]);
	}
	if (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0) {
		bool off = argv[0][0] == 'd';

		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		ret = lib_status(c, principal_set_disabled(c->db, g.pos[0], off, &err), &err);
		return ret != EXIT_OK ? ret : done(c, "%s %s", off ? "disabled" : "enabled",
						   g.pos[0]);
	}
	if (strcmp(argv[0], "quota") == 0) {
		struct principal *p;
		int64_t storage, messages;

		parse_args(c, argc - 1, argv + 1, O_STORAGE | O_MESSAGES, 1, 1, &g);
		if ((g.given & (O_STORAGE | O_MESSAGES)) == 0)
			usage_error("user quota ADDRESS --storage S --messages N");
		ret = need_principal(c, g.pos[0], -1, &p);
		if (ret != EXIT_OK)
			return ret;
		storage = p->quota_storage;
		messages = p->quota_messages;
		if (optv(&g, O_STORAGE) != NULL && parse_size(optv(&g, O_STORAGE), &storage) < 0)
			return fail("--storage %s: not a size (e.g. 500M, 2G, 0 = unlimited)",
				    optv(&g, O_STORAGE));
		if (optv(&g, O_MESSAGES) != NULL &&
		    parse_count(optv(&g, O_MESSAGES), &messages) < 0)
			return fail("--messages %s: not a whole number (0 = unlimited)",
				    optv(&g, O_MESSAGES));
		ret = lib_status(c, principal_set_quota(c->db, g.pos[0], storage, messages,
							&err), &err);
		return ret != EXIT_OK ? ret
			: done(c, "quota of %s: storage %s, messages %s", p->address,
			       fmt_size(c->a, storage), messages == 0 ? "unlimited"
			       : bu_arena_printf(c->a, "%" PRId64, messages));
	}
	if (strcmp(argv[0], "remove") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		return remove_principal(c, PRINCIPAL_USER, g.pos[0]);
	}
	usage_error("user: unknown subcommand '%s'", argv[0]);
}

/* ---- aliases -------------------------------------------------------- */

static int cmd_alias(struct ctl *c, int argc, char **argv)
{
	const char *err = NULL;
	struct args g;
	int ret;

	if (argc < 1)
		usage_error("alias: add, remove or list?");
	if (strcmp(argv[0], "add") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 2, 2, &g);
		ret = lib_status(c, alias_add(c->db, g.pos[0], g.pos[1], &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json) {
			print_json(json_pack("{s:s, s:s}", "alias", g.pos[0], "target", g.pos[1]));
			return EXIT_OK;
		}
		return done(c, "added alias %s for %s", g.pos[0], g.pos[1]);
	}
	if (strcmp(argv[0], "remove") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		ret = lib_status(c, alias_remove(c->db, g.pos[0], &err), &err);
		return ret != EXIT_OK ? ret : done(c, "removed alias %s", g.pos[0]);
	}
	if (strcmp(argv[0], "list") == 0) {
		json_t *arr = NULL;
		char **list;
		size_t n;

		parse_args(c, argc - 1, argv + 1, 0, 0, 1, &g);
		ret = lib_status(c, alias_list(c->db, c->a, g.n_pos > 0 ? g.pos[0] : NULL,
					       &list, &n, &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json)
			arr = json_array();
		for (size_t i = 0; i < n; i++) {
			struct principal *p;
			const char *target = "?";

			if (principal_lookup(c->db, c->a, list[i], &p) == 1)
				target = p->address;
			if (arr != NULL)
				json_array_append_new(arr, json_pack("{s:s, s:s}", "alias", list[i],
								     "target", target));
			else
				printf("%-40s -> %s\n", list[i], target);
		}
		if (arr != NULL)
			print_json(arr);
		return EXIT_OK;
	}
	usage_error("alias: unknown subcommand '%s'", argv[0]);
}

/* ---- shared mailboxes, resources, groups ---------------------------- */

static int member_cmd(struct ctl *c, int argc, char **argv, bool shared)
{
	const char *err = NULL;
	struct args g;
	int ret;

	if (argc < 1 || (strcmp(argv[0], "add") != 0 && strcmp(argv[0], "remove") != 0))
		usage_error("member add or member remove?");
	if (argv[0][0] == 'a') {
		parse_args(c, argc - 1, argv + 1, shared ? O_RIGHTS : 0, 2, 2, &g);
		ret = lib_status(c, member_add(c->db, g.pos[0], g.pos[1], optv(&g, O_RIGHTS),
					       &err), &err);
		return ret != EXIT_OK ? ret : done(c, "%s is now a member of %s", g.pos[1],
						   g.pos[0]);
	}
	parse_args(c, argc - 1, argv + 1, 0, 2, 2, &g);
	ret = lib_status(c, member_remove(c->db, g.pos[0], g.pos[1], &err), &err);
	return ret != EXIT_OK ? ret : done(c, "%s is no longer a member of %s", g.pos[1],
					   g.pos[0]);
}

static int cmd_kind(struct ctl *c, int argc, char **argv, enum principal_kind kind)
{
	const char *name = principal_kind_name(kind);
	struct args g;
	unsigned add_opts = O_NAME;

	if (argc < 1)
		usage_error("%s: which subcommand?", name);
	if (kind == PRINCIPAL_SHARED)
		add_opts |= O_MEMBER;
	if (strcmp(argv[0], "add") == 0) {
		parse_args(c, argc - 1, argv + 1, add_opts, 1, 1, &g);
		return add_principal(c, kind, &g, NULL);
	}
	if (strcmp(argv[0], "remove") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		return remove_principal(c, kind, g.pos[0]);
	}
	if (strcmp(argv[0], "list") == 0) {
		parse_args(c, argc - 1, argv + 1, 0, 0, 1, &g);
		return list_principals(c, g.n_pos > 0 ? g.pos[0] : NULL, (int)kind);
	}
	if (strcmp(argv[0], "member") == 0 &&
	    (kind == PRINCIPAL_SHARED || kind == PRINCIPAL_GROUP))
		return member_cmd(c, argc - 1, argv + 1, kind == PRINCIPAL_SHARED);
	if (strcmp(argv[0], "members") == 0 &&
	    (kind == PRINCIPAL_SHARED || kind == PRINCIPAL_GROUP)) {
		const char *err = NULL;
		char **list;
		size_t n;
		int ret;

		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		ret = lib_status(c, member_list(c->db, c->a, g.pos[0], &list, &n, &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json) {
			json_t *arr = json_array();

			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, json_string(list[i]));
			print_json(arr);
			return EXIT_OK;
		}
		for (size_t i = 0; i < n; i++)
			puts(list[i]);
		return EXIT_OK;
	}
	usage_error("%s: unknown subcommand '%s'", name, argv[0]);
}

/* ---- rights --------------------------------------------------------- */

/* "owner@x/Folder/Sub" -> owner and collection id (0 = whole account) */
static int resolve_target(struct ctl *c, const char *spec, struct principal **owner_r,
			  int64_t *coll_r, const char **coll_name_r)
{
	static const enum collection_kind order[] = {
		COLL_MAIL, COLL_CALENDAR, COLL_ADDRESSBOOK, COLL_TASKS
	};
	const char *slash = strchr(spec, '/');
	char *addr = slash != NULL ? bu_arena_strndup(c->a, spec, (size_t)(slash - spec))
		: bu_arena_strdup(c->a, spec);
	struct collection *coll;
	int ret = need_principal(c, addr, -1, owner_r);

	*coll_r = 0;
	*coll_name_r = NULL;
	if (ret != EXIT_OK)
		return ret;
	if (slash == NULL)
		return EXIT_OK;
	if (slash[1] == '\0')
		return fail("no collection name after '/' in %s", spec);
	for (size_t i = 0; i < BU_N_ELEMENTS(order); i++) {
		ret = collection_get_by_name(c->db, c->a, (*owner_r)->id, order[i], slash + 1,
					     &coll);
		if (ret < 0)
			return lib_error(c, "cannot look up the collection");
		if (ret == 1) {
			*coll_r = coll->id;
			*coll_name_r = coll->name;
			return EXIT_OK;
		}
	}
	return fail("%s has no mail folder, calendar, address book or task list named %s",
		    (*owner_r)->address, slash + 1);
}

static int cmd_grant(struct ctl *c, int argc, char **argv, bool revoke)
{
	struct principal *owner;
	const char *err = NULL, *coll_name;
	int64_t coll;
	uint32_t rights = 0;
	char letters[16];
	struct args g;
	int ret;

	parse_args(c, argc, argv, 0, revoke ? 2 : 3, revoke ? 2 : 3, &g);
	if (!revoke) {
		if (strcasecmp(g.pos[2], "all") == 0)
			rights = ACL_ALL;
		else if (acl_parse(g.pos[2], &rights) < 0)
			return fail("bad rights '%s': use the letters lrswipkxtea (or all)",
				    g.pos[2]);
		if (rights == 0)
			return fail("no rights given; to take rights away use: bureauctl revoke");
	}
	ret = resolve_target(c, g.pos[0], &owner, &coll, &coll_name);
	if (ret != EXIT_OK)
		return ret;
	ret = lib_status(c, acl_set(c->db, owner->id, coll, g.pos[1], rights, &err), &err);
	if (ret != EXIT_OK)
		return ret;
	if (revoke)
		return done(c, "%s has no rights of its own on %s any more", g.pos[1], g.pos[0]);
	return done(c, "%s has rights %s on %s", g.pos[1], acl_format(rights, letters), g.pos[0]);
}

static int cmd_rights(struct ctl *c, int argc, char **argv)
{
	struct principal *owner;
	struct acl_entry *list;
	const char *coll_name;
	int64_t coll;
	char letters[16];
	struct args g;
	size_t n;
	int ret;

	parse_args(c, argc, argv, 0, 1, 1, &g);
	ret = resolve_target(c, g.pos[0], &owner, &coll, &coll_name);
	if (ret != EXIT_OK)
		return ret;
	if (acl_list(c->db, c->a, owner->id, coll, &list, &n) < 0)
		return lib_error(c, "cannot read the rights");
	if (c->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s}", "grantee",
				list[i].grantee, "rights", acl_format(list[i].rights, letters)));
		print_json(arr);
		return EXIT_OK;
	}
	printf("%-40s %s (owner)\n", owner->address, acl_format(ACL_ALL, letters));
	for (size_t i = 0; i < n; i++)
		printf("%-40s %s\n", list[i].grantee, acl_format(list[i].rights, letters));
	return EXIT_OK;
}

/* ---- app passwords -------------------------------------------------- */

static int cmd_app_password(struct ctl *c, int argc, char **argv)
{
	const char *err = NULL;
	struct args g;
	int ret;

	if (argc < 1)
		usage_error("app-password: add, list or revoke?");
	if (strcmp(argv[0], "add") == 0) {
		char *pw = NULL;
		int64_t id = 0;

		parse_args(c, argc - 1, argv + 1, 0, 2, 2, &g);
		ret = lib_status(c, app_password_add(c->db, c->a, g.pos[0], g.pos[1], &id, &pw,
						     &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json)
			print_json(json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
					     "name", g.pos[1], "password", pw));
		else
			printf("%s\n(app password %" PRId64 " \"%s\" for %s: shown only now)\n",
			       pw, id, g.pos[1], g.pos[0]);
		bu_wipe(pw, strlen(pw));
		return EXIT_OK;
	}
	if (strcmp(argv[0], "list") == 0) {
		struct app_password *list;
		size_t n;

		parse_args(c, argc - 1, argv + 1, 0, 1, 1, &g);
		ret = lib_status(c, app_password_list(c->db, c->a, g.pos[0], &list, &n, &err), &err);
		if (ret != EXIT_OK)
			return ret;
		if (c->json) {
			json_t *arr = json_array();

			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:o}",
					"id", (json_int_t)list[i].id, "name", list[i].name,
					"created", (json_int_t)list[i].created,
					"last_used", list[i].last_used > 0
					? json_integer(list[i].last_used) : json_null()));
			print_json(arr);
			return EXIT_OK;
		}
		for (size_t i = 0; i < n; i++)
			printf("%4" PRId64 "  %-30s created %s  last used %s\n", list[i].id,
			       list[i].name, fmt_time(c->a, list[i].created),
			       fmt_time(c->a, list[i].last_used));
		return EXIT_OK;
	}
	if (strcmp(argv[0], "revoke") == 0) {
		uint64_t id;

		parse_args(c, argc - 1, argv + 1, 0, 2, 2, &g);
		if (bu_parse_u64(g.pos[1], strlen(g.pos[1]), INT64_MAX, &id) < 0)
			return fail("%s is not an app password id (see: bureauctl app-password"
				    " list %s)", g.pos[1], g.pos[0]);
		ret = lib_status(c, app_password_revoke(c->db, g.pos[0], (int64_t)id, &err), &err);
		return ret != EXIT_OK ? ret : done(c, "revoked app password %" PRIu64 " of %s",
						   id, g.pos[0]);
	}
	usage_error("app-password: unknown subcommand '%s'", argv[0]);
}

/* ---- set-up --------------------------------------------------------- */

/* conninfo for messages: passwords masked, wherever libpq accepts one:
 * "postgresql://user:PW@host/db?password=PW&..." or "key = 'value' ...",
 * with or without spaces around '=' and with quoted values. */
static void redact_url(struct bu_buf *b, const char *url)
{
	const char *rest = strstr(url, "://") + 3;
	size_t auth_end = strcspn(rest, "/?");
	const char *at = memrchr(rest, '@', auth_end);
	const char *colon = at != NULL ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
	const char *q;

	if (colon != NULL) {
		bu_buf_append(b, url, (size_t)(colon + 1 - url));
		bu_buf_append_str(b, "***");
		rest = at;
	} else {
		bu_buf_append(b, url, (size_t)(rest - url));
	}
	q = strchr(rest, '?');
	if (q == NULL) {
		bu_buf_append_str(b, rest);
		return;
	}
	bu_buf_append(b, rest, (size_t)(q + 1 - rest));
	for (const char *p = q + 1; *p != '\0';) {
		size_t n = strcspn(p, "&");

		if (n >= 9 && strncmp(p, "password=", 9) == 0)
			bu_buf_append_str(b, "password=***");
		else
			bu_buf_append(b, p, n);
		p += n;
		if (*p == '&') {
			bu_buf_append_byte(b, '&');
			p++;
		}
	}
}

static void redact_keyvalue(struct bu_buf *b, const char *p)
{
	while (*p != '\0') {
		const char *key, *val;
		size_t klen;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		key = p;
		while (*p != '\0' && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		klen = (size_t)(p - key);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=')
			p++;
		while (*p == ' ' || *p == '\t')
			p++;
		val = p;
		if (*p == '\'') {
			for (p++; *p != '\0' && *p != '\''; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			if (*p == '\'')
				p++;
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t')
				p++;
		}
		if (b->len > 0)
			bu_buf_append_byte(b, ' ');
		bu_buf_append(b, key, klen);
		bu_buf_append_byte(b, '=');
		if (klen == 8 && strncmp(key, "password", 8) == 0)
			bu_buf_append_str(b, "***");
		else
			bu_buf_append(b, val, (size_t)(p - val));
	}
}

static char *redact(const char *conninfo)
{
	struct bu_buf b;

	bu_buf_init(&b, 0);
	if (strncmp(conninfo, "postgresql://", 13) == 0 ||
	    strncmp(conninfo, "postgres://", 11) == 0)
		redact_url(&b, conninfo);
	else
		redact_keyvalue(&b, conninfo);
	return bu_buf_steal(&b, NULL);
}

static int connect_db(struct ctl *c)
{
	char *state = NULL;

	if (c->cfg.database_url != NULL && c->cfg.database_url[0] != '\0') {
		c->conninfo = bu_strdup(c->cfg.database_url);
	} else {
		char *dir = bu_config_state_path(&c->cfg, "pg");

		c->conninfo = bu_pgembed_conninfo(dir);
		free(dir);
	}
	c->db = bu_db_create(c->conninfo);
	/* the connection attempt would log its own line: one line is enough */
	bu_log_set_level(BU_LOG_FATAL);
	if (bu_db_ensure(c->db) == 0) {
		bu_log_set_level(BU_LOG_ERROR);
		return EXIT_OK;
	}
	{
		char *shown = redact(c->conninfo);

		state = bu_config_state_path(&c->cfg, NULL);
		fprintf(stderr, "bureauctl: cannot reach the database at %s: is bureaud running?"
			" (state_dir %s)\n", shown, state);
		free(shown);
		free(state);
	}
	return EXIT_DB;
}

static void ctl_free(struct ctl *c)
{
	if (c->password != NULL) {
		bu_wipe(c->password, strlen(c->password));
		free(c->password);
	}
	if (c->db != NULL)
		bu_db_destroy(&c->db);
	if (c->a != NULL)
		bu_arena_destroy(&c->a);
	free(c->conninfo);
	bu_config_free(&c->cfg);
}

int main(int argc, char **argv)
{
	struct ctl c;
	const char *config = NULL, *err = NULL, *cmd;
	struct stat st;
	int i, ret;

	memset(&c, 0, sizeof(c));
	bu_log_open(NULL, BU_LOG_ERROR);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc)
				usage_error("%s needs a file name", argv[i]);
			config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
		} else if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "help") == 0) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (argv[i][0] == '-') {
			usage_error("unknown option %s", argv[i]);
		} else {
			break;
		}
	}
	if (i >= argc)
		usage_error("no command given");
	cmd = argv[i++];
	usage_cmd = cmd;
	if (strcmp(cmd, "domain") != 0 && strcmp(cmd, "user") != 0 &&
	    strcmp(cmd, "alias") != 0 && strcmp(cmd, "shared") != 0 &&
	    strcmp(cmd, "resource") != 0 && strcmp(cmd, "group") != 0 &&
	    strcmp(cmd, "grant") != 0 && strcmp(cmd, "revoke") != 0 &&
	    strcmp(cmd, "rights") != 0 && strcmp(cmd, "app-password") != 0) {
		usage_cmd = NULL;
		usage_error("unknown command '%s'", cmd);
	}

	bu_config_defaults(&c.cfg);
	if (config == NULL && stat(DEFAULT_CONFIG, &st) == 0)
		config = DEFAULT_CONFIG;
	if (config != NULL && bu_config_load(&c.cfg, config, &err) < 0) {
		fprintf(stderr, "bureauctl: %s\n", err);
		bu_config_free(&c.cfg);
		return EXIT_INPUT;
	}
	c.a = bu_arena_create(0);

	if (strcmp(cmd, "domain") == 0)
		ret = cmd_domain(&c, argc - i, argv + i);
	else if (strcmp(cmd, "user") == 0)
		ret = cmd_user(&c, argc - i, argv + i);
	else if (strcmp(cmd, "alias") == 0)
		ret = cmd_alias(&c, argc - i, argv + i);
	else if (strcmp(cmd, "shared") == 0)
		ret = cmd_kind(&c, argc - i, argv + i, PRINCIPAL_SHARED);
	else if (strcmp(cmd, "resource") == 0)
		ret = cmd_kind(&c, argc - i, argv + i, PRINCIPAL_RESOURCE);
	else if (strcmp(cmd, "group") == 0)
		ret = cmd_kind(&c, argc - i, argv + i, PRINCIPAL_GROUP);
	else if (strcmp(cmd, "grant") == 0)
		ret = cmd_grant(&c, argc - i, argv + i, false);
	else if (strcmp(cmd, "revoke") == 0)
		ret = cmd_grant(&c, argc - i, argv + i, true);
	else if (strcmp(cmd, "rights") == 0)
		ret = cmd_rights(&c, argc - i, argv + i);
	else
		ret = cmd_app_password(&c, argc - i, argv + i);
	fflush(stdout);
	ctl_free(&c);
	return ret;
}
