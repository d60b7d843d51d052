/*
 * mail_thread.c - THREAD=REFERENCES and THREAD=ORDEREDSUBJECT (RFC 5256
 * section 3) over the messages of a folder that match a search.
 *
 * The rows (uid, Message-ID, In-Reply-To, References, subject, base
 * subject, sent date) come from one SQL query; the algorithms run here in
 * memory. Sent date is the Date: header, else the internal date; ties are
 * broken by UID (the sequence number order).
 *
 * REFERENCES follows the RFC's steps: (1) link messages through their
 * References (else the first In-Reply-To id) without creating loops, the
 * last reference becoming the parent; duplicate and missing Message-IDs
 * get unique ids; (2) the parentless containers are the root set; (3)
 * dummies are pruned (a dummy root with several children stays); (4) the
 * root set is sorted by date; (5) roots with the same base subject are
 * merged; (6) every set of siblings is sorted by date.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "groupware/acl.h"
#include "groupware/mailstore_private.h"
#include "server/core/db.h"

struct th_node {
	uint32_t uid;            /* 0 = dummy */
	size_t seq;              /* position in UID order, for ties */
	int64_t date;
	const char *subject;     /* base subject ("" = none) */
	bool is_reply;
	struct th_node *parent, *child, *next;
};

/* ---- message-id table (open addressing) -------------------------------- */

struct th_table {
	const char **keys;
	struct th_node **vals;
	size_t cap;
};

static uint64_t th_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void th_table_init(struct bu_arena *a, struct th_table *t, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2 + 1)
		cap *= 2;
	t->cap = cap;
	t->keys = bu_arena_alloc(a, bu_size_mul(cap, sizeof(*t->keys)));
	t->vals = bu_arena_alloc(a, bu_size_mul(cap, sizeof(*t->vals)));
}

static struct th_node **th_slot(struct th_table *t, const char *key)
{
	size_t i = (size_t)th_hash(key) & (t->cap - 1);

	while (t->keys[i] != NULL && strcmp(t->keys[i], key) != 0)
		i = (i + 1) & (t->cap - 1);
	t->keys[i] = key;
	return &t->vals[i];
}

/* ---- links ------------------------------------------------------------- */

static bool th_is_descendant(const struct th_node *n, const struct th_node *of)
{
	for (; n != NULL; n = n->parent) {
		if (n == of)
			return true;
	}
	return false;
}

static void th_unlink(struct th_node *n)
{
	struct th_node **pp;

	if (n->parent == NULL)
		return;
	for (pp = &n->parent->child; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	n->parent = NULL;
	n->next = NULL;
}

static void th_add_child(struct th_node *parent, struct th_node *c)
{
	struct th_node **pp = &parent->child;

	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = c;
	c->parent = parent;
	c->next = NULL;
}

/* ---- sorting ------------------------------------------------------------ */

/* a dummy sorts by its first child (after its children are sorted) */
static const struct th_node *th_key(const struct th_node *n)
{
	while (n->uid == 0 && n->child != NULL)
		n = n->child;
	return n;
}

static int th_cmp(const void *x, const void *y)
{
	const struct th_node *a = th_key(*(struct th_node *const *)x);
	const struct th_node *b = th_key(*(struct th_node *const *)y);

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* sort a sibling list by date; with deep, every level below first */
static struct th_node *th_sort(struct bu_arena *a, struct th_node *first, bool deep)
{
	struct th_node **v;
	size_t n = 0, i = 0;

	for (struct th_node *c = first; c != NULL; c = c->next) {
		if (deep || c->uid == 0)
			c->child = th_sort(a, c->child, deep);
		n++;
	}
	if (n < 2)
		return first;
	v = bu_arena_alloc(a, bu_size_mul(n, sizeof(*v)));
	for (struct th_node *c = first; c != NULL; c = c->next)
		v[i++] = c;
	qsort(v, n, sizeof(*v), th_cmp);
	for (i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	return v[0];
}

/* ---- pruning (step 3) --------------------------------------------------- */

static struct th_node *th_prune(struct th_node *first, struct th_node *parent, bool root)
{
	struct th_node *out = NULL, **tail = &out, *next;

	for (struct th_node *c = first; c != NULL; c = next) {
		next = c->next;
		c->next = NULL;
		c->child = th_prune(c->child, c, false);
		if (c->uid == 0 && c->child == NULL)
			continue;                       /* empty dummy: gone */
		if (c->uid == 0 && (!root || c->child->next == NULL)) {
			/* promote the children to this level */
			for (struct th_node *k = c->child; k != NULL; k = k->next) {
				k->parent = parent;
				*tail = k;
				tail = &k->next;
			}
			continue;
		}
		c->parent = parent;
		*tail = c;
		tail = &c->next;
	}
	*tail = NULL;
	return out;
}

/* ---- subjects ----------------------------------------------------------- */

/* RFC 5256 2.1: a reply or forward has a "re"/"fw"/"fwd" prefix (after
 * any [blob]s), a "[fwd:" wrapper or a "(fwd)" trailer. */
static bool th_subject_is_reply(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[') {
			const char *e;

			if (strncasecmp(s, "[fwd:", 5) == 0)
				return true;
			e = strchr(s, ']');
			if (e == NULL)
				break;
			s = e + 1;
			continue;
		}
		break;
	}
	for (const char *pfx = "re\0fwd\0fw\0"; *pfx != '\0'; pfx += strlen(pfx) + 1) {
		size_t n = strlen(pfx);
		const char *p = s + n;

		if (strncasecmp(s, pfx, n) != 0)
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			p = strchr(p, ']');
			if (p == NULL)
				continue;
			p++;
		}
		if (*p == ':')
			return true;
	}
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len >= 5 && strncasecmp(s + len - 5, "(fwd)", 5) == 0;
}

static const char *th_thread_subject(const struct th_node *n)
{
	if (n->uid == 0 && n->child != NULL)
		n = n->child;
	return n->subject;
}

/* step 5: merge root threads with the same base subject */
static struct th_node *th_group_subjects(struct bu_arena *a, struct th_node *roots,
					 size_t n_nodes, struct th_node *root)
{
	struct th_table t;
	struct th_node **v, *out = NULL, **tail = &out;
	size_t n = 0, i = 0;

	for (struct th_node *c = roots; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return roots;
	v = bu_arena_alloc(a, bu_size_mul(n, sizeof(*v)));
	for (struct th_node *c = roots; c != NULL; c = c->next)
		v[i++] = c;
	th_table_init(a, &t, n + n_nodes / 4);

	/* (B) one thread per subject in the table; a dummy, or a message that
	 * is not a reply, wins over a reply */
	for (i = 0; i < n; i++) {
		const char *s = th_thread_subject(v[i]);
		struct th_node **slot;

		if (s == NULL || *s == '\0')
			continue;
		slot = th_slot(&t, bu_arena_strdup(a, s));
		if (*slot == NULL)
			*slot = v[i];
		else if ((*slot)->uid != 0 &&
			 (v[i]->uid == 0 || ((*slot)->is_reply && !v[i]->is_reply)))
			*slot = v[i];
	}
	/* (C) merge the others into it */
	for (i = 0; i < n; i++) {
		struct th_node *cur = v[i], *tab, **slot;
		const char *s = th_thread_subject(cur);

		if (cur == NULL || s == NULL || *s == '\0')
			continue;
		slot = th_slot(&t, bu_arena_strdup(a, s));
		tab = *slot;
		if (tab == cur)
			continue;
		if (tab->uid == 0 && cur->uid == 0) {
			struct th_node *k, *knext;

			for (k = cur->child; k != NULL; k = knext) {
				knext = k->next;
				th_add_child(tab, k);
			}
			cur->child = NULL;
		} else if (tab->uid == 0 && cur->uid != 0) {
			th_add_child(tab, cur);
		} else if (tab->uid != 0 && cur->uid != 0 && cur->is_reply && !tab->is_reply) {
			th_add_child(tab, cur);
		} else {
			/* a new dummy takes the table thread's place among the roots */
			struct th_node *d = bu_arena_alloc(a, sizeof(*d));

			for (size_t j = 0; j < n; j++) {
				if (v[j] == tab) {
					v[j] = d;
					break;
				}
			}
			d->parent = root;
			th_add_child(d, tab);
			th_add_child(d, cur);
			*slot = d;
		}
		v[i] = NULL;          /* no longer a root */
	}
	for (i = 0; i < n; i++) {
		if (v[i] == NULL)
			continue;
		v[i]->parent = root;
		*tail = v[i];
		tail = &v[i]->next;
	}
	*tail = NULL;
	return out;
}

/* ---- output -------------------------------------------------------------- */

static struct ms_thread *th_export(struct bu_arena *a, const struct th_node *first)
{
	struct ms_thread *out = NULL, **tail = &out;

	for (const struct th_node *c = first; c != NULL; c = c->next) {
		struct ms_thread *t = bu_arena_alloc(a, sizeof(*t));

		t->uid = c->uid;
		t->children = th_export(a, c->child);
		*tail = t;
		tail = &t->next;
	}
	return out;
}

/* ---- algorithms ---------------------------------------------------------- */

struct th_msg {
	uint32_t uid;
	const char *message_id, *in_reply_to, *references;
	const char *subject, *base_subject;
	int64_t date;
};

/* msg-ids compare without quoting differences (RFC 5256 section 3) */
static char *th_norm_id(struct bu_arena *a, const char *s, size_t len)
{
	char *out = bu_arena_alloc(a, len + 1);
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '<' && s[i] != '>')
			out[j++] = s[i];
	}
	out[j] = '\0';
	return out;
}

static struct th_node *th_container(struct bu_arena *a, struct th_table *t,
				    const char *id, struct th_node **all, size_t *n_all)
{
	struct th_node **slot = th_slot(t, id);

	if (*slot == NULL) {
		*slot = bu_arena_alloc(a, sizeof(**slot));
		(*slot)->subject = "";
		all[(*n_all)++] = *slot;
	}
	return *slot;
}

static struct ms_thread *th_references(struct bu_arena *a, const struct th_msg *m, size_t n)
{
	struct th_table t;
	struct th_node root, **all, *roots = NULL, **tail = &roots;
	size_t n_all = 0, cap = n;

	/* containers: one per message and one per referenced id */
	for (size_t i = 0; i < n; i++) {
		const char *r = m[i].references;

		cap += 1;
		for (; r != NULL && *r != '\0'; r++) {
			if (*r == ' ')
				cap++;
		}
	}
	all = bu_arena_alloc(a, bu_size_mul(cap + 1, sizeof(*all)));
	th_table_init(a, &t, cap);
	memset(&root, 0, sizeof(root));

	for (size_t i = 0; i < n; i++) {
		struct th_node *prev = NULL, *self = NULL;
		const char *refs = m[i].references;
		char *id;

		if (refs == NULL || *refs == '\0')
			refs = m[i].in_reply_to;
		/* (1A) chain the references */
		for (const char *p = refs; p != NULL && *p != '\0';) {
			size_t len;
			struct th_node *c;

			while (*p == ' ')
				p++;
			len = strcspn(p, " ");
			if (len == 0)
				break;
			id = th_norm_id(a, p, len);
			p += len;
			if (*id == '\0')
				continue;
			c = th_container(a, &t, id, all, &n_all);
			if (prev != NULL && c != prev && c->parent == NULL &&
			    !th_is_descendant(prev, c))
				th_add_child(prev, c);
			prev = c;
		}
		/* the message's own container: by Message-ID unless that id is
		 * missing or already taken by an earlier message */
		if (m[i].message_id != NULL && m[i].message_id[0] != '\0') {
			id = th_norm_id(a, m[i].message_id, strlen(m[i].message_id));
			if (*id != '\0') {
				struct th_node **slot = th_slot(&t, id);

				if (*slot == NULL) {
					*slot = bu_arena_alloc(a, sizeof(**slot));
					all[n_all++] = *slot;
				}
				if ((*slot)->uid == 0)
					self = *slot;
			}
		}
		if (self == NULL) {
			self = bu_arena_alloc(a, sizeof(*self));
			all[n_all++] = self;
		}
		self->uid = m[i].uid;
		self->seq = i;
		self->date = m[i].date;
		self->subject = m[i].base_subject != NULL ? m[i].base_subject : "";
		self->is_reply = th_subject_is_reply(m[i].subject);
		/* (1B) the last reference is the parent */
		th_unlink(self);
		if (prev != NULL && prev != self && !th_is_descendant(prev, self))
			th_add_child(prev, self);
	}

	/* (2) the root set */
	for (size_t i = 0; i < n_all; i++) {
		if (all[i]->parent == NULL) {
			all[i]->parent = &root;
			*tail = all[i];
			tail = &all[i]->next;
		}
	}
	*tail = NULL;
	/* (3) prune dummies, (4) sort the roots, (5) subjects, (6) sort all */
	roots = th_prune(roots, &root, true);
	roots = th_sort(a, roots, false);
	roots = th_group_subjects(a, roots, n_all, &root);
	roots = th_sort(a, roots, true);
	return th_export(a, roots);
}

static int th_subject_cmp(const void *x, const void *y)
{
	const struct th_msg *a = *(const struct th_msg *const *)x;
	const struct th_msg *b = *(const struct th_msg *const *)y;
	int c = strcasecmp(a->base_subject, b->base_subject);

	if (c != 0)
		return c;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static int th_root_cmp(const void *x, const void *y)
{
	const struct th_node *a = *(struct th_node *const *)x;
	const struct th_node *b = *(struct th_node *const *)y;

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* ORDEREDSUBJECT: sort by (base subject, date); each subject is a thread
 * whose first message is the parent of all the others; threads ordered
 * by their first message's date */
static struct ms_thread *th_orderedsubject(struct bu_arena *a, const struct th_msg *m, size_t n)
{
	const struct th_msg **v;
	struct th_node **roots, *first = NULL;
	size_t n_roots = 0;

	if (n == 0)
		return NULL;
	v = bu_arena_alloc(a, bu_size_mul(n, sizeof(*v)));
	roots = bu_arena_alloc(a, bu_size_mul(n, sizeof(*roots)));
	for (size_t i = 0; i < n; i++)
		v[i] = &m[i];
	qsort(v, n, sizeof(*v), th_subject_cmp);
	for (size_t i = 0; i < n; i++) {
		struct th_node *c = bu_arena_alloc(a, sizeof(*c));

		c->uid = v[i]->uid;
		c->date = v[i]->date;
		if (i > 0 && strcasecmp(v[i]->base_subject, v[i - 1]->base_subject) == 0)
			th_add_child(roots[n_roots - 1], c);
		else
			roots[n_roots++] = c;
	}
	qsort(roots, n_roots, sizeof(*roots), th_root_cmp);
	for (size_t i = n_roots; i-- > 0;) {
		roots[i]->next = first;
		first = roots[i];
	}
	return th_export(a, first);
}

int ms_thread(struct bu_db *db, struct bu_arena *a, int64_t viewer, int64_t owner_id,
	      int64_t collection_id, const struct ms_search *q, enum ms_thread_algo algo,
	      struct ms_thread **roots_r)
{
	struct ms_search_ctx ctx;
	struct ms_params p;
	struct bu_buf sql;
	struct th_msg *m;
	uint32_t rights;
	PGresult *r;
	int rows, ret;

	*roots_r = NULL;
	if (ms_rights(db, viewer, owner_id, collection_id, &rights) < 0)
		return MS_ERR;
	if (!(rights & ACL_READ))
		return MS_NOPERM;
	memset(&ctx, 0, sizeof(ctx));
	ctx.db = db;
	ctx.a = a;
	ctx.owner_id = owner_id;
	ctx.collection_id = collection_id;
	ctx.viewer = viewer;
	ctx.is_owner = viewer == owner_id;
	ms_params_init(&p, a);
	ctx.p_account = ms_param_i64(&p, owner_id);
	ctx.p_collection = ms_param_i64(&p, collection_id);
	bu_buf_init(&sql, 0);
	bu_buf_append_str(&sql, "SELECT m.uid, m.message_id, m.in_reply_to, m.references_,"
			  " coalesce(m.subject, ''), m.base_subject,"
			  " coalesce(m.sent_date, m.internaldate) FROM mail_messages m"
			  " WHERE m.account_id = $1 AND m.collection_id = $2 AND ");
	ret = ms_search_where(&ctx, q, &sql, &p);
	if (ret < 0) {
		bu_buf_deinit(&sql);
		return ret;
	}
	bu_buf_append_str(&sql, " ORDER BY m.uid");
	r = ms_query(db, bu_buf_cstr(&sql), &p);
	bu_buf_deinit(&sql);
	if (r == NULL)
		return MS_ERR;
	ms_arena_own_result(a, r);
	rows = PQntuples(r);
	if (rows == 0) {
		ret = ms_collection_exists(db, owner_id, collection_id);
		return ret < 0 ? MS_ERR : ret == 0 ? MS_NOTFOUND : 0;
	}
	m = bu_arena_alloc(a, bu_size_mul((size_t)rows, sizeof(*m)));
	for (int i = 0; i < rows; i++) {
		m[i].uid = (uint32_t)ms_val_i64(r, i, 0);
		m[i].message_id = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
		m[i].in_reply_to = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
		m[i].references = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
		m[i].subject = PQgetvalue(r, i, 4);
		m[i].base_subject = PQgetvalue(r, i, 5);
		m[i].date = ms_val_i64(r, i, 6);
	}
	*roots_r = algo == MS_THREAD_ORDEREDSUBJECT ? th_orderedsubject(a, m, (size_t)rows) :
		th_references(a, m, (size_t)rows);
	return 0;
}
