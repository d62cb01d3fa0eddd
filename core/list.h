/* list.h — the intrusive doubly linked list of the core: slabs on a heap's
 * class lists (heap.c), the list of heaps (heap.c), SuperSlabs (superslab.c)
 * and medium chunks (medium.c). A list is a head pointer; a node is any
 * struct with `next` and `prev` pointers to its own type. Not thread-safe: the
 * caller holds whatever protects the list. */
#ifndef HAK_LIST_H
#define HAK_LIST_H

#include <stddef.h>

/* Puts node at the front of the list *head. */
#define hak_list_push(head, node)                                              \
  do {                                                                         \
    __typeof__(node) n_ = (node);                                              \
    n_->prev = NULL;                                                           \
    n_->next = *(head);                                                        \
    if (n_->next != NULL) n_->next->prev = n_;                                 \
    *(head) = n_;                                                              \
  } while (0)

/* Takes node out of the list *head; its links are left NULL. */
#define hak_list_remove(head, node)                                            \
  do {                                                                         \
    __typeof__(node) n_ = (node);                                              \
    if (n_->prev != NULL) n_->prev->next = n_->next;                           \
    else *(head) = n_->next;                                                   \
    if (n_->next != NULL) n_->next->prev = n_->prev;                           \
    n_->next = n_->prev = NULL;                                                \
  } while (0)

#endif
