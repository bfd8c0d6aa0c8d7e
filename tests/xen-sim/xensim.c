/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A simulated Xen: see xensim.h.  Single-threaded; the "hypervisor" and
 * "xenstored" are these data structures, changed synchronously by the
 * test (guest, toolstack) and by the backend through its xenif.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/list.h"
#include "xensim.h"

#define PG XENIF_PAGE_SIZE
#define SIM_PAGES 1024
#define FIRST_REF 8 /* refs 0..7 are reserved in Xen */
#define MAX_GRANTS SIM_PAGES
#define MAX_CHANNELS 64
#define MAX_MAPS 64
#define MAX_AREAS 512

struct node {
	char *path;
	size_t plen;   /* strlen(path) */
	uint32_t hash; /* path_hash(path): most lookups end on it */
	char *val;
	size_t len;
	struct list_node link; /* xensim.nodes, newest first */
};

struct watch {
	char *path, *token;
	struct list_node link; /* simif.watches, newest first */
};

struct wevent {
	char *path, *token;
	struct list_node link; /* simif.events, in order */
};

struct grant {
	bool used;
	uint32_t ref, from, to;
	uint32_t slot;
};

struct channel {
	bool used, front_closed;
	uint32_t front_dom, front_port, remote;
	/* The frontend end: a xenif (tpmfront) or, when NULL, the test. */
	struct simif *front_if;
	bool f_masked, f_pending;
	struct simif *bound;
	uint32_t back_port;
	bool masked, pending;
	uint64_t received;
};

struct map {
	bool used;
	void *addr;
	uint32_t count;
};

/* Pages this domain shared (gnt_share): grants[first .. first+count). */
struct share {
	bool used;
	void *addr;
	uint32_t count, first;
};

struct simif {
	struct xenif xif;
	struct xensim *w;
	uint32_t domid;
	struct list_node watches;
	struct list_node events; /* fired, not yet read */
	int xs_efd;
	int ev_efd;
	uint32_t *queue; /* fired ports, in order */
	size_t qlen, qcap;
	struct map maps[MAX_MAPS];
	struct share shares[MAX_MAPS];
	struct list_node link; /* xensim.ifs, newest first */
};

/* An address range we made (guarded views, tombstones), freed at the end. */
struct area {
	void *base;
	size_t len;
};

struct xensim {
	struct list_node nodes;
	struct list_node ifs;
	int memfd;
	uint32_t next_slot;
	struct grant grants[MAX_GRANTS];
	struct channel ch[MAX_CHANNELS];
	uint32_t next_front_port, next_back_port;
	struct area areas[MAX_AREAS];
	size_t nareas;
	uint64_t map_calls;
	/* Frontend and backend may run on two threads (the mgrlink test):
	 * one lock around every call, recursive for xensim_free. */
	pthread_mutex_t lock;
};

#define LOCKED(w, expr)                                                  \
	do {                                                             \
		pthread_mutex_lock(&(w)->lock);                          \
		expr;                                                    \
		pthread_mutex_unlock(&(w)->lock);                        \
	} while (0)

static struct simif *si(struct xenif *x)
{
	return (struct simif *)x;
}

static void area_add(struct xensim *w, void *base, size_t len)
{
	if (w->nareas < MAX_AREAS) {
		w->areas[w->nareas].base = base;
		w->areas[w->nareas].len = len;
		w->nareas++;
	}
}

/* n pages of the memfd at slots[], between two guard pages: one mmap
 * per run of consecutive slots (a grant's pages always are one), which
 * the fuzz targets, granting at every input, spend their time on. */
static void *map_guarded(struct xensim *w, const uint32_t *slots, uint32_t n)
{
	size_t len = (size_t)(n + 2) * PG;
	uint8_t *base =
	    mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (uint32_t i = 0, run; i < n; i += run) {
		void *p;

		for (run = 1; i + run < n && slots[i + run] == slots[i] + run;
		     run++)
			;
		p = mmap(base + (size_t)(i + 1) * PG, (size_t)run * PG,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 w->memfd, (off_t)slots[i] * PG);
		if (p == MAP_FAILED) {
			munmap(base, len);
			return NULL;
		}
	}
	return base + PG;
}

/* ---- xenstore ---- */

/* FNV-1a.  The fuzz targets look nodes up thousands of times per input:
 * comparing hashes first keeps them off strcmp, which libFuzzer's hooks
 * make slow. */
static uint32_t path_hash(const char *path, size_t *len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; path[i]; i++)
		h = (h ^ (uint8_t)path[i]) * 16777619u;
	*len = i;
	return h;
}

static struct node *node_find(struct xensim *w, const char *path)
{
	struct list_node *pos, *tmp;
	size_t len;
	uint32_t h = path_hash(path, &len);

	list_for_each_safe(pos, tmp, &w->nodes) {
		struct node *n = list_item(pos, struct node, link);

		if (n->hash == h && n->plen == len &&
		    memcmp(n->path, path, len) == 0)
			return n;
	}
	return NULL;
}

static void node_free(struct node *n)
{
	list_remove(&n->link);
	free(n->path);
	free(n->val);
	free(n);
}

static void watch_free(struct watch *wt)
{
	list_remove(&wt->link);
	free(wt->path);
	free(wt->token);
	free(wt);
}

static void wevent_free(struct wevent *e)
{
	list_remove(&e->link);
	free(e->path);
	free(e->token);
	free(e);
}

/* Queues a fired watch for s and flags its fd readable. */
static int wevent_push(struct simif *s, const char *path, const char *token)
{
	struct wevent *e = calloc(1, sizeof(*e));
	uint64_t one = 1;

	if (!e)
		return -ENOMEM;
	e->path = strdup(path);
	e->token = strdup(token);
	list_push_back(&s->events, &e->link);
	if (write(s->xs_efd, &one, sizeof(one)) < 0)
		abort();
	return 0;
}

static bool is_below(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	return strncmp(path, dir, l) == 0 && path[l] == '/';
}

static void fire(struct xensim *w, const char *path, bool removal)
{
	struct list_node *ip, *it, *wp, *wtmp;

	list_for_each_safe(ip, it, &w->ifs) {
		struct simif *s = list_item(ip, struct simif, link);

		list_for_each_safe(wp, wtmp, &s->watches) {
			struct watch *wt = list_item(wp, struct watch, link);

			if (strcmp(path, wt->path) != 0 &&
			    !is_below(path, wt->path) &&
			    !(removal && is_below(wt->path, path)))
				continue;
			if (wevent_push(s, path, wt->token))
				abort();
		}
	}
}

static int sim_write_raw(struct xensim *w, const char *path, const char *val,
		     size_t len)
{
	struct node *n = node_find(w, path);
	char *v = malloc(len + 1);

	if (!v)
		return -ENOMEM;
	memcpy(v, val, len);
	v[len] = '\0';
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			free(v);
			return -ENOMEM;
		}
		n->path = strdup(path);
		if (!n->path) {
			free(n);
			free(v);
			return -ENOMEM;
		}
		n->hash = path_hash(n->path, &n->plen);
		list_push_front(&w->nodes, &n->link);
	}
	free(n->val);
	n->val = v;
	n->len = len;
	fire(w, path, false);
	return 0;
}

static int sim_write(struct xensim *w, const char *path, const char *val)
{
	return sim_write_raw(w, path, val, strlen(val));
}

static int sim_rm(struct xensim *w, const char *path)
{
	struct list_node *pos, *tmp;
	bool any = false;

	list_for_each_safe(pos, tmp, &w->nodes) {
		struct node *n = list_item(pos, struct node, link);

		if (strcmp(n->path, path) == 0 || is_below(n->path, path)) {
			node_free(n);
			any = true;
		}
	}
	if (!any)
		return -ENOENT;
	fire(w, path, true);
	return 0;
}

static char *sim_read(struct xensim *w, const char *path)
{
	struct node *n = node_find(w, path);

	return n ? strdup(n->val) : NULL;
}

static int sx_read(struct xenif *x, const char *path, char **val, size_t *len)
{
	struct node *n = node_find(si(x)->w, path);
	char *v;

	if (!n)
		return -ENOENT;
	v = malloc(n->len + 1);
	if (!v)
		return -ENOMEM;
	memcpy(v, n->val, n->len + 1);
	*val = v;
	if (len)
		*len = n->len;
	return 0;
}

/* Like xs_directory: immediate children, one block (array + strings). */
static int sx_directory(struct xenif *x, const char *path, char ***names,
			unsigned int *n)
{
	struct xensim *w = si(x)->w;
	size_t l = strlen(path), count = 0, cap = 0, bytes = 0;
	bool exists = node_find(w, path) != NULL;
	const char **kid = NULL;
	size_t *kl = NULL;
	struct list_node *pos, *tmp;
	char **v, *p;

	*n = 0;
	list_for_each_safe(pos, tmp, &w->nodes) {
		struct node *nd = list_item(pos, struct node, link);
		const char *c;
		size_t cl, j;

		if (!is_below(nd->path, path))
			continue;
		exists = true;
		c = nd->path + l + 1;
		cl = strcspn(c, "/");
		for (j = 0; j < count; j++)
			if (kl[j] == cl && memcmp(kid[j], c, cl) == 0)
				break;
		if (j < count)
			continue;
		if (count == cap) {
			cap = cap ? 2 * cap : 16;
			kid = realloc(kid, cap * sizeof(*kid));
			kl = realloc(kl, cap * sizeof(*kl));
			if (!kid || !kl)
				abort();
		}
		kid[count] = c;
		kl[count++] = cl;
		bytes += cl + 1;
	}
	if (!exists) {
		free(kid);
		free(kl);
		return -ENOENT;
	}
	v = malloc((count + 1) * sizeof(char *) + bytes + 1);
	if (!v)
		abort();
	p = (char *)(v + count + 1);
	for (size_t j = 0; j < count; j++) {
		memcpy(p, kid[j], kl[j]);
		p[kl[j]] = '\0';
		v[j] = p;
		p += kl[j] + 1;
	}
	v[count] = NULL;
	free(kid);
	free(kl);
	*names = v;
	*n = (unsigned int)count;
	return 0;
}

static int sx_write(struct xenif *x, const char *path, const char *val)
{
	return sim_write(si(x)->w, path, val);
}

static int sx_rm(struct xenif *x, const char *path)
{
	return sim_rm(si(x)->w, path);
}

static int sx_watch(struct xenif *x, const char *path, const char *token)
{
	struct simif *s = si(x);
	struct watch *wt = calloc(1, sizeof(*wt));

	if (!wt)
		return -ENOMEM;
	wt->path = strdup(path);
	wt->token = strdup(token);
	list_push_front(&s->watches, &wt->link);
	/* xenstored fires a new watch once, at once. */
	if (wevent_push(s, path, token))
		abort();
	return 0;
}

static int sx_unwatch(struct xenif *x, const char *path, const char *token)
{
	struct simif *s = si(x);
	struct list_node *pos, *tmp, *ep, *etmp;

	list_for_each_safe(pos, tmp, &s->watches) {
		struct watch *wt = list_item(pos, struct watch, link);

		if (strcmp(wt->path, path) || strcmp(wt->token, token))
			continue;
		watch_free(wt);
		/* XS_UNWATCH_FILTER: no stale event for it afterwards. */
		list_for_each_safe(ep, etmp, &s->events) {
			struct wevent *e = list_item(ep, struct wevent, link);

			if (strcmp(e->token, token) == 0)
				wevent_free(e);
		}
		return 0;
	}
	return -ENOENT;
}

static int sx_xs_fd(struct xenif *x)
{
	return si(x)->xs_efd;
}

static void drain_efd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		abort();
}

static int sx_watch_read(struct xenif *x, char **path, char **token)
{
	struct simif *s = si(x);
	struct list_node *first = list_pop_front(&s->events);
	struct wevent *e;

	if (!first) {
		drain_efd(s->xs_efd);
		return -EAGAIN;
	}
	e = list_item(first, struct wevent, link);
	if (list_empty(&s->events))
		drain_efd(s->xs_efd);
	*path = e->path;
	*token = e->token;
	free(e);
	return 0;
}

/* ---- grants ---- */

static int sim_grant(struct xensim *w, uint32_t from, uint32_t to, uint32_t n,
		 uint32_t *refs, uint8_t **view)
{
	uint32_t slots[16];
	uint8_t *v;

	if (n == 0 || n > 16 || w->next_slot + n > SIM_PAGES)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t g = w->next_slot + i;

		slots[i] = g;
		w->grants[g].used = true;
		w->grants[g].ref = FIRST_REF + g;
		w->grants[g].from = from;
		w->grants[g].to = to;
		w->grants[g].slot = g;
		refs[i] = FIRST_REF + g;
	}
	w->next_slot += n;
	v = map_guarded(w, slots, n);
	if (!v)
		return -ENOMEM;
	area_add(w, v - PG, (size_t)(n + 2) * PG);
	/* No memset: the slots are new (next_slot only grows) and a new
	 * memfd page reads as zeros. */
	*view = v;
	return 0;
}

static int sx_gnt_map(struct xenif *x, uint32_t domid, uint32_t count,
		      const uint32_t *refs, void **addr)
{
	struct simif *s = si(x);
	struct xensim *w = s->w;
	uint32_t slots[16];
	struct map *m = NULL;
	void *v;

	w->map_calls++;
	if (count == 0 || count > 16)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t g = refs[i] - FIRST_REF;

		if (refs[i] < FIRST_REF || g >= MAX_GRANTS ||
		    !w->grants[g].used || w->grants[g].from != domid ||
		    w->grants[g].to != s->domid)
			return -EINVAL;
		slots[i] = w->grants[g].slot;
	}
	for (size_t i = 0; i < MAX_MAPS; i++)
		if (!s->maps[i].used) {
			m = &s->maps[i];
			break;
		}
	if (!m)
		return -ENOSPC;
	v = map_guarded(w, slots, count);
	if (!v)
		return -ENOMEM;
	m->used = true;
	m->addr = v;
	m->count = count;
	*addr = v;
	return 0;
}

static int sx_gnt_unmap(struct xenif *x, void *addr, uint32_t count)
{
	struct simif *s = si(x);

	for (size_t i = 0; i < MAX_MAPS; i++) {
		struct map *m = &s->maps[i];
		uint8_t *base;
		size_t len;

		if (!m->used || m->addr != addr)
			continue;
		if (m->count != count)
			return -EINVAL;
		base = (uint8_t *)addr - PG;
		len = (size_t)(count + 2) * PG;
		/* A tombstone: any later touch of the area faults. */
		if (mmap(base, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) == MAP_FAILED)
			abort();
		area_add(s->w, base, len);
		m->used = false;
		return 0;
	}
	return -EINVAL;
}

/* A frontend shares pages: the grants any backend maps by ref. */
static int sx_gnt_share(struct xenif *x, uint32_t domid, uint32_t count,
			uint32_t *refs, void **addr)
{
	struct simif *s = si(x);
	struct share *sh = NULL;
	uint8_t *view;
	uint32_t first = s->w->next_slot;
	int rc;

	for (size_t i = 0; i < MAX_MAPS; i++)
		if (!s->shares[i].used) {
			sh = &s->shares[i];
			break;
		}
	if (!sh)
		return -ENOSPC;
	rc = sim_grant(s->w, s->domid, domid, count, refs, &view);
	if (rc)
		return rc;
	sh->used = true;
	sh->addr = view;
	sh->count = count;
	sh->first = first;
	*addr = view;
	return 0;
}

/* Ends the grants (a later gnt_map of them fails) and leaves our view a
 * PROT_NONE tombstone; a backend's mapping keeps the pages, as Xen's
 * gntalloc keeps them until the mapper lets go. */
static int sx_gnt_unshare(struct xenif *x, void *addr, uint32_t count)
{
	struct simif *s = si(x);

	for (size_t i = 0; i < MAX_MAPS; i++) {
		struct share *sh = &s->shares[i];

		if (!sh->used || sh->addr != addr)
			continue;
		if (sh->count != count)
			return -EINVAL;
		for (uint32_t g = sh->first; g < sh->first + count; g++)
			s->w->grants[g].used = false;
		if (mmap((uint8_t *)addr - PG, (size_t)(count + 2) * PG,
			 PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) == MAP_FAILED)
			abort();
		sh->used = false;
		return 0;
	}
	return -EINVAL;
}

static int sx_self_domid(struct xenif *x, uint32_t *domid)
{
	*domid = si(x)->domid;
	return 0;
}

/* ---- event channels ---- */

static struct channel *ch_front(struct xensim *w, uint32_t dom, uint32_t port)
{
	for (size_t i = 0; i < MAX_CHANNELS; i++)
		if (w->ch[i].used && w->ch[i].front_dom == dom &&
		    w->ch[i].front_port == port)
			return &w->ch[i];
	return NULL;
}

static void enqueue(struct simif *s, uint32_t port)
{
	uint64_t one = 1;

	if (s->qlen == s->qcap) {
		size_t ncap = s->qcap ? s->qcap * 2 : 16;
		uint32_t *q = realloc(s->queue, ncap * sizeof(*q));

		if (!q)
			abort();
		s->queue = q;
		s->qcap = ncap;
	}
	s->queue[s->qlen++] = port;
	if (write(s->ev_efd, &one, sizeof(one)) < 0)
		abort();
}

static int sim_evtchn_alloc_unbound(struct xensim *w, uint32_t dom,
				    uint32_t remote, uint32_t *port)
{
	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &w->ch[i];

		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->front_dom = dom;
		c->front_port = ++w->next_front_port;
		c->remote = remote;
		*port = c->front_port;
		return 0;
	}
	return -ENOSPC;
}

/* The frontend end fires: the bound backend end gets it, coalesced. */
static void to_back(struct channel *c)
{
	if (!c->bound)
		return; /* an unbound port: the event is lost */
	if (c->masked) {
		c->pending = true;
		return;
	}
	c->masked = true;
	enqueue(c->bound, c->back_port);
}

/* The backend end fires: a frontend xenif gets it, coalesced; the test
 * (no xenif) only counts it. */
static void to_front(struct channel *c)
{
	if (c->front_closed)
		return;
	c->received++;
	if (!c->front_if)
		return;
	if (c->f_masked) {
		c->f_pending = true;
		return;
	}
	c->f_masked = true;
	enqueue(c->front_if, c->front_port);
}

static int sim_evtchn_send(struct xensim *w, uint32_t dom, uint32_t port)
{
	struct channel *c = ch_front(w, dom, port);

	if (!c || c->front_closed)
		return -EINVAL;
	to_back(c);
	return 0;
}

static uint64_t sim_evtchn_received(struct xensim *w, uint32_t dom,
				    uint32_t port)
{
	struct channel *c = ch_front(w, dom, port);

	return c ? c->received : 0;
}

static void purge_queue(struct simif *s, uint32_t port)
{
	size_t j = 0;

	for (size_t i = 0; i < s->qlen; i++)
		if (s->queue[i] != port)
			s->queue[j++] = s->queue[i];
	s->qlen = j;
}

static void front_close(struct channel *c)
{
	c->front_closed = true;
	if (c->front_if)
		purge_queue(c->front_if, c->front_port);
	c->front_if = NULL;
	if (!c->bound)
		c->used = false;
}

static int sim_evtchn_close(struct xensim *w, uint32_t dom, uint32_t port)
{
	struct channel *c = ch_front(w, dom, port);

	if (!c)
		return -EINVAL;
	front_close(c);
	return 0;
}

/* A port of this xenif, either end; *front says which. */
static struct channel *ch_local(struct simif *s, uint32_t port, bool *front)
{
	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &s->w->ch[i];

		if (!c->used)
			continue;
		if (c->bound == s && c->back_port == port) {
			*front = false;
			return c;
		}
		if (c->front_if == s && c->front_port == port) {
			*front = true;
			return c;
		}
	}
	return NULL;
}

/* Ports of a xenif, bound or allocated, come from one counter. */
static int sx_evtchn_alloc_unbound(struct xenif *x, uint32_t domid,
				   uint32_t *local_port)
{
	struct simif *s = si(x);

	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &s->w->ch[i];

		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->front_dom = s->domid;
		c->front_port = ++s->w->next_back_port;
		c->front_if = s;
		c->remote = domid;
		*local_port = c->front_port;
		return 0;
	}
	return -ENOSPC;
}

static int sx_evtchn_bind(struct xenif *x, uint32_t domid, uint32_t remote_port,
			  uint32_t *local_port)
{
	struct simif *s = si(x);
	struct channel *c = ch_front(s->w, domid, remote_port);

	if (!c || c->front_closed || c->bound || c->remote != s->domid)
		return -EINVAL;
	c->bound = s;
	c->back_port = ++s->w->next_back_port;
	c->masked = c->pending = false;
	*local_port = c->back_port;
	return 0;
}

static int sx_evtchn_unbind(struct xenif *x, uint32_t port)
{
	struct simif *s = si(x);
	bool front;
	struct channel *c = ch_local(s, port, &front);

	if (!c)
		return -EINVAL;
	if (front) {
		front_close(c);
		return 0;
	}
	c->bound = NULL;
	if (c->front_closed)
		c->used = false;
	purge_queue(s, port);
	return 0;
}

static int sx_evtchn_notify(struct xenif *x, uint32_t port)
{
	bool front;
	struct channel *c = ch_local(si(x), port, &front);

	if (!c)
		return -EINVAL;
	if (front)
		to_back(c);
	else
		to_front(c);
	return 0;
}

static int sx_evtchn_fd(struct xenif *x)
{
	return si(x)->ev_efd;
}

static int sx_evtchn_pending(struct xenif *x, uint32_t *port)
{
	struct simif *s = si(x);

	if (s->qlen == 0) {
		drain_efd(s->ev_efd);
		return -EAGAIN;
	}
	*port = s->queue[0];
	memmove(s->queue, s->queue + 1, (s->qlen - 1) * sizeof(*s->queue));
	if (--s->qlen == 0)
		drain_efd(s->ev_efd);
	return 0;
}

static int sx_evtchn_unmask(struct xenif *x, uint32_t port)
{
	struct simif *s = si(x);
	bool front;
	struct channel *c = ch_local(s, port, &front);
	bool *masked, *pending;

	if (!c)
		return -EINVAL;
	masked = front ? &c->f_masked : &c->masked;
	pending = front ? &c->f_pending : &c->pending;
	*masked = false;
	if (*pending) {
		*pending = false;
		*masked = true;
		enqueue(s, port);
	}
	return 0;
}

/* ---- handles ---- */

static void sx_close(struct xenif *x)
{
	struct simif *s = si(x);
	struct xensim *w = s->w;

	struct list_node *n;

	list_remove(&s->link);
	while ((n = list_first(&s->watches)))
		watch_free(list_item(n, struct watch, link));
	while ((n = list_first(&s->events)))
		wevent_free(list_item(n, struct wevent, link));
	for (size_t i = 0; i < MAX_CHANNELS; i++) {
		struct channel *c = &w->ch[i];

		if (c->used && c->front_if == s)
			front_close(c);
		if (c->used && c->bound == s) {
			c->bound = NULL;
			if (c->front_closed)
				c->used = false;
		}
	}
	for (size_t i = 0; i < MAX_MAPS; i++) {
		if (s->maps[i].used)
			munmap((uint8_t *)s->maps[i].addr - PG,
			       (size_t)(s->maps[i].count + 2) * PG);
		if (s->shares[i].used)
			for (uint32_t g = s->shares[i].first;
			     g < s->shares[i].first + s->shares[i].count; g++)
				w->grants[g].used = false;
	}
	close(s->xs_efd);
	close(s->ev_efd);
	free(s->queue);
	free(s);
}

/* ---- the table: every call under the world's lock ---- */

#define W_OF(x) (si(x)->w)

static void lk_close(struct xenif *x)
{
	struct xensim *w = W_OF(x);

	LOCKED(w, sx_close(x));
}

#define LK(name, params, args)                                           \
	static int lk_##name params                                      \
	{                                                                \
		struct xensim *w = W_OF(x);                              \
		int rc;                                                  \
                                                                         \
		LOCKED(w, rc = sx_##name args);                          \
		return rc;                                               \
	}

LK(read, (struct xenif * x, const char *p, char **v, size_t *l), (x, p, v, l))
LK(write, (struct xenif * x, const char *p, const char *v), (x, p, v))
LK(rm, (struct xenif * x, const char *p), (x, p))
LK(watch, (struct xenif * x, const char *p, const char *t), (x, p, t))
LK(unwatch, (struct xenif * x, const char *p, const char *t), (x, p, t))
LK(xs_fd, (struct xenif * x), (x))
LK(watch_read, (struct xenif * x, char **p, char **t), (x, p, t))
LK(directory, (struct xenif * x, const char *p, char ***v, unsigned int *n),
   (x, p, v, n))
LK(gnt_map,
   (struct xenif * x, uint32_t d, uint32_t n, const uint32_t *r, void **a),
   (x, d, n, r, a))
LK(gnt_unmap, (struct xenif * x, void *a, uint32_t n), (x, a, n))
LK(evtchn_bind, (struct xenif * x, uint32_t d, uint32_t r, uint32_t *l),
   (x, d, r, l))
LK(evtchn_unbind, (struct xenif * x, uint32_t p), (x, p))
LK(evtchn_notify, (struct xenif * x, uint32_t p), (x, p))
LK(evtchn_fd, (struct xenif * x), (x))
LK(evtchn_pending, (struct xenif * x, uint32_t *p), (x, p))
LK(evtchn_unmask, (struct xenif * x, uint32_t p), (x, p))
LK(gnt_share, (struct xenif * x, uint32_t d, uint32_t n, uint32_t *r, void **a),
   (x, d, n, r, a))
LK(gnt_unshare, (struct xenif * x, void *a, uint32_t n), (x, a, n))
LK(evtchn_alloc_unbound, (struct xenif * x, uint32_t d, uint32_t *p),
   (x, d, p))
LK(self_domid, (struct xenif * x, uint32_t *d), (x, d))

static const struct xenif_ops sim_ops = {
    .name = "xensim",
    .close = lk_close,
    .xs_read = lk_read,
    .xs_write = lk_write,
    .xs_rm = lk_rm,
    .xs_watch = lk_watch,
    .xs_unwatch = lk_unwatch,
    .xs_fd = lk_xs_fd,
    .xs_watch_read = lk_watch_read,
    .xs_directory = lk_directory,
    .gnt_map = lk_gnt_map,
    .gnt_unmap = lk_gnt_unmap,
    .evtchn_bind = lk_evtchn_bind,
    .evtchn_unbind = lk_evtchn_unbind,
    .evtchn_notify = lk_evtchn_notify,
    .evtchn_fd = lk_evtchn_fd,
    .evtchn_pending = lk_evtchn_pending,
    .evtchn_unmask = lk_evtchn_unmask,
    .gnt_share = lk_gnt_share,
    .gnt_unshare = lk_gnt_unshare,
    .evtchn_alloc_unbound = lk_evtchn_alloc_unbound,
    .self_domid = lk_self_domid,
};

static struct xenif *sim_open(struct xensim *w, uint32_t domid)
{
	struct simif *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->xif.ops = &sim_ops;
	s->w = w;
	s->domid = domid;
	s->xs_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->ev_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->xs_efd < 0 || s->ev_efd < 0) {
		if (s->xs_efd >= 0)
			close(s->xs_efd);
		if (s->ev_efd >= 0)
			close(s->ev_efd);
		free(s);
		return NULL;
	}
	list_init(&s->watches);
	list_init(&s->events);
	list_push_front(&w->ifs, &s->link);
	return &s->xif;
}

struct xensim *xensim_new(void)
{
	struct xensim *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	list_init(&w->nodes);
	list_init(&w->ifs);
	w->memfd = memfd_create("xensim", MFD_CLOEXEC);
	if (w->memfd < 0 || ftruncate(w->memfd, (off_t)SIM_PAGES * PG) < 0) {
		if (w->memfd >= 0)
			close(w->memfd);
		free(w);
		return NULL;
	}
	{
		pthread_mutexattr_t a;

		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&w->lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	return w;
}

void xensim_free(struct xensim *w)
{
	struct list_node *n;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	while ((n = list_first(&w->ifs)))
		sx_close(&list_item(n, struct simif, link)->xif);
	pthread_mutex_unlock(&w->lock);
	while ((n = list_first(&w->nodes)))
		node_free(list_item(n, struct node, link));
	for (size_t i = 0; i < w->nareas; i++)
		munmap(w->areas[i].base, w->areas[i].len);
	close(w->memfd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static size_t sim_maps_live(struct xensim *w)
{
	struct list_node *pos, *tmp;
	size_t n = 0;

	list_for_each_safe(pos, tmp, &w->ifs)
		for (size_t i = 0; i < MAX_MAPS; i++)
			n += list_item(pos, struct simif, link)->maps[i].used;
	return n;
}

static size_t sim_binds_live(struct xensim *w)
{
	size_t n = 0;

	for (size_t i = 0; i < MAX_CHANNELS; i++)
		n += w->ch[i].used && w->ch[i].bound;
	return n;
}

static uint64_t sim_map_calls(struct xensim *w)
{
	return w->map_calls;
}

static size_t sim_shares_live(struct xensim *w)
{
	struct list_node *pos, *tmp;
	size_t n = 0;

	list_for_each_safe(pos, tmp, &w->ifs)
		for (size_t i = 0; i < MAX_MAPS; i++)
			n += list_item(pos, struct simif, link)->shares[i].used;
	return n;
}

static size_t sim_front_ports_live(struct xensim *w)
{
	size_t n = 0;

	for (size_t i = 0; i < MAX_CHANNELS; i++)
		n += w->ch[i].used && w->ch[i].front_if;
	return n;
}

/* ---- the public calls: each under the world's lock ---- */

#define PUB(type, name, params, args)                                    \
	type xensim_##name params                                        \
	{                                                                \
		type r;                                                  \
                                                                         \
		LOCKED(w, r = sim_##name args);                          \
		return r;                                                \
	}

PUB(struct xenif *, open, (struct xensim * w, uint32_t domid), (w, domid))
PUB(int, write, (struct xensim * w, const char *p, const char *v), (w, p, v))
PUB(int, write_raw,
    (struct xensim * w, const char *p, const char *v, size_t len),
    (w, p, v, len))
PUB(int, rm, (struct xensim * w, const char *p), (w, p))
PUB(char *, read, (struct xensim * w, const char *p), (w, p))
PUB(int, grant,
    (struct xensim * w, uint32_t from, uint32_t to, uint32_t n, uint32_t *refs,
     uint8_t **view),
    (w, from, to, n, refs, view))
PUB(int, evtchn_alloc_unbound,
    (struct xensim * w, uint32_t dom, uint32_t remote, uint32_t *port),
    (w, dom, remote, port))
PUB(int, evtchn_send, (struct xensim * w, uint32_t dom, uint32_t port),
    (w, dom, port))
PUB(uint64_t, evtchn_received, (struct xensim * w, uint32_t dom, uint32_t port),
    (w, dom, port))
PUB(int, evtchn_close, (struct xensim * w, uint32_t dom, uint32_t port),
    (w, dom, port))
PUB(size_t, maps_live, (struct xensim * w), (w))
PUB(size_t, binds_live, (struct xensim * w), (w))
PUB(uint64_t, map_calls, (struct xensim * w), (w))
PUB(size_t, shares_live, (struct xensim * w), (w))
PUB(size_t, front_ports_live, (struct xensim * w), (w))
