/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one intrusive list: a circular, doubly linked ring through a head
 * node, embedded in the element (struct list_node member), so that
 * insertion and removal never allocate and removal of a known element is
 * O(1).  Not thread-safe.
 */
#ifndef VTPM_LIB_LIST_H
#define VTPM_LIB_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *next, *prev;
};

/* The element that holds node n as its member m. */
#define list_item(n, type, m) ((type *)((char *)(n) - offsetof(type, m)))

static inline void list_init(struct list_node *h)
{
	h->next = h->prev = h;
}

static inline bool list_empty(const struct list_node *h)
{
	return h->next == h;
}

/* Whether n is on some list (nodes are kept self-linked when off one). */
static inline bool list_linked(const struct list_node *n)
{
	return n->next && n->next != n;
}

static inline void list_insert_before(struct list_node *at,
				      struct list_node *n)
{
	n->prev = at->prev;
	n->next = at;
	at->prev->next = n;
	at->prev = n;
}

static inline void list_push_back(struct list_node *h, struct list_node *n)
{
	list_insert_before(h, n);
}

static inline void list_push_front(struct list_node *h, struct list_node *n)
{
	list_insert_before(h->next, n);
}

/* Unlinks n and leaves it self-linked (list_linked() false). */
static inline void list_remove(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

/* The first node, or NULL when empty. */
static inline struct list_node *list_first(const struct list_node *h)
{
	return list_empty(h) ? NULL : h->next;
}

static inline struct list_node *list_pop_front(struct list_node *h)
{
	struct list_node *n = list_first(h);

	if (n)
		list_remove(n);
	return n;
}

/* Every node, in order; the body may remove pos (tmp holds the next). */
#define list_for_each_safe(pos, tmp, h)                                      \
	for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h);          \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
