/*
 * worker.c - the worker pool: cfg->db_pool_size threads, each owning one
 * database connection for its whole life, fed from one mutex + condvar
 * queue of struct bu_task.
 *
 * A task submitted by a connection goes back to the connection's I/O
 * thread when run() returns (net_post_done); a task from bu_worker_call()
 * has no connection and wakes its blocked caller instead.
 *
 * On stop the workers drain the queue before exiting, so that every task
 * that was submitted also completes (its done() callback is what lets the
 * I/O thread free the connection).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "net_private.h"

/* a task with no connection, for bu_worker_call */
struct call_task {
	struct bu_task t;
	int (*fn)(void *arg, struct bu_db *db);
	void *arg;
	int rc;
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

struct worker_arg {
	struct bu_server *srv;
	int idx;
};

/* set on worker threads: bu_worker_call from a task would wait for a
 * worker while holding one, and deadlock once every worker does it */
static __thread bool tl_is_worker;

static void *worker_main(void *p)
{
	struct worker_arg *wa = p;
	struct bu_server *s = wa->srv;
	struct bu_workers *w = &s->workers;
	struct bu_db *db = NULL;
	char name[16];

	snprintf(name, sizeof(name), "bu-worker-%d", wa->idx);
	pthread_setname_np(pthread_self(), name);
	free(wa);
	tl_is_worker = true;

	if (w->db_connect != NULL)
		db = w->db_connect(w->db_arg);

	for (;;) {
		struct bu_task *t;

		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		t = w->head;
		if (t == NULL) {
			/* stop requested and the queue is empty */
			pthread_mutex_unlock(&w->mu);
			break;
		}
		w->head = t->next;
		if (w->head == NULL)
			w->tail = NULL;
		t->next = NULL;
		pthread_mutex_unlock(&w->mu);

		if (t->conn != NULL) {
			/* task_ctx was snapshotted at submit time and is not
			 * touched by the I/O thread while the task is out */
			bu_log_ctx_set(t->conn->task_ctx);
			t->run(t, db);
			bu_log_ctx_set(NULL);
			net_post_done(t->conn->th, t);
		} else {
			t->run(t, db);
		}
	}
	if (db != NULL)
		bu_db_destroy(&db);
	return NULL;
}

int workers_start(struct bu_server *s, struct bu_db *(*db_connect)(void *arg),
		  void *db_arg, const char **error_r)
{
	struct bu_workers *w = &s->workers;
	sigset_t all, old;
	int n = s->cfg->db_pool_size > 0 ? s->cfg->db_pool_size : 1;

	w->db_connect = db_connect;
	w->db_arg = db_arg;
	w->tids = bu_calloc((size_t)n, sizeof(*w->tids));
	w->n = 0;
	/* workers take no signals; the main thread handles them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < n; i++) {
		struct worker_arg *wa = bu_malloc(sizeof(*wa));
		int err;

		wa->srv = s;
		wa->idx = i;
		err = pthread_create(&w->tids[i], NULL, worker_main, wa);
		if (err != 0) {
			free(wa);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			*error_r = net_err("cannot start worker thread: %s", strerror(err));
			w->started = w->n > 0;
			workers_stop(s);
			return -1;
		}
		w->n++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	w->started = true;
	return 0;
}

void workers_push(struct bu_server *s, struct bu_task *t)
{
	struct bu_workers *w = &s->workers;

	t->next = NULL;
	pthread_mutex_lock(&w->mu);
	bu_assert(!w->stop);
	if (w->tail != NULL)
		w->tail->next = t;
	else
		w->head = t;
	w->tail = t;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void workers_stop(struct bu_server *s)
{
	struct bu_workers *w = &s->workers;

	if (!w->started && w->n == 0) {
		bu_free(&w->tids);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->tids[i], NULL);
	w->n = 0;
	w->started = false;
	bu_free(&w->tids);
}

static void call_run(struct bu_task *t, struct bu_db *db)
{
	struct call_task *ct = (struct call_task *)t;

	ct->rc = ct->fn(ct->arg, db);
	pthread_mutex_lock(&ct->mu);
	ct->done = true;
	pthread_cond_signal(&ct->cv);
	pthread_mutex_unlock(&ct->mu);
}

int bu_worker_call(struct bu_server *srv, int (*fn)(void *arg, struct bu_db *db), void *arg)
{
	struct bu_workers *w = &srv->workers;
	struct call_task ct;
	bool ok;

	/* an I/O thread blocking here would stall all its sessions; a
	 * worker would wait for itself */
	bu_assert(!net_on_io_thread() && !tl_is_worker);

	memset(&ct, 0, sizeof(ct));
	ct.t.run = call_run;
	ct.fn = fn;
	ct.arg = arg;
	ct.rc = -1;
	pthread_mutex_init(&ct.mu, NULL);
	pthread_cond_init(&ct.cv, NULL);

	pthread_mutex_lock(&w->mu);
	ok = w->started && !w->stop;
	if (ok) {
		ct.t.submitted_us = bu_mono_us();
		if (w->tail != NULL)
			w->tail->next = &ct.t;
		else
			w->head = &ct.t;
		w->tail = &ct.t;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);

	if (ok) {
		pthread_mutex_lock(&ct.mu);
		while (!ct.done)
			pthread_cond_wait(&ct.cv, &ct.mu);
		pthread_mutex_unlock(&ct.mu);
	} else {
		bu_warn("event=worker_call_refused reason=\"worker pool not running\"");
	}
	pthread_cond_destroy(&ct.cv);
	pthread_mutex_destroy(&ct.mu);
	return ct.rc;
}
