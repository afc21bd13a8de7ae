/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Worker threads for vhost-user-fs: file-system calls block (a slow disk, a
 * network file system underneath), so requests run here and the loop only pops
 * and pushes. A plain queue under a mutex: the work per request (a system call
 * or a few) dwarfs the hand-over. The threads start with the pool, which the
 * device creates on its first kick: after confinement, as threads must.
 */
#include <stdlib.h>

#include "dev/fs.h"

struct fs_pool {
	struct fs *fs;
	fs_pool_fn run, done;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct fs_req *head, *tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

static void *worker(void *opaque)
{
	struct fs_pool *p = opaque;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!p->head)
			break; /* stopping, and nothing left */
		struct fs_req *r = p->head;
		p->head = r->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		p->run(p->fs, r);
		p->done(p->fs, r);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct fs_pool *fs_pool_new(struct fs *fs, unsigned threads, fs_pool_fn run, fs_pool_fn done)
{
	struct fs_pool *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));

	if (!p)
		return NULL;
	*p = (struct fs_pool){ .fs = fs, .run = run, .done = done };
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (; p->nthreads < threads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, worker, p)) {
			fs_pool_free(p);
			return NULL;
		}
	return p;
}

void fs_pool_submit(struct fs_pool *p, struct fs_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = r;
	else
		p->head = r;
	p->tail = r;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void fs_pool_free(struct fs_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}
