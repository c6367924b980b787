/* The internal statuses of the index's and the operations' steps: one
 * vocabulary.  A step that can end in more than one way returns an int: one
 * of these (>= 0), or a negative -MPISTORE_* error code.  Each name means
 * the same thing wherever it is returned; a step's comment says which of
 * them it can return.  Types only. */
#ifndef MPISTORE_STATUS_H
#define MPISTORE_STATUS_H

typedef enum mpistore__status {
    MS_DONE = 0,    /* the step completed: its results are valid */
    MS_RETRY = 1,   /* a concurrent change was seen (a publication between two
                       reads, a slot locked or between versions): look again
                       after a backoff */
    MS_RETRY_NOW,   /* look again at once, no backoff: this rank has just grown
                       the index, the next look finds room */
    MS_OTHER_KEY,   /* the slot holds another key (a fingerprint collision):
                       try the next candidate slot */
    MS_ABSENT,      /* no slot holds the key: insert it */
    MS_NO_ROOM,     /* an insert found no free slot around its key at any level */
    MS_LOCKED_PATH, /* a lock-free add cannot be done on this slot: take the
                       locked path (a string value, a stale kind hint, the
                       bounds of counters.c) */
    MS_GONE,        /* a watched counter's slot no longer holds the publication
                       the watch was made for (overwritten, deleted, reused) */
    MS_BUSY,        /* a watched counter's slot is locked or a publication is
                       landing: peek, without registering, next time */
    MS_STABLE,      /* a peek found the watched slot stable again: look again,
                       registered, at once */
    MS_NO_QUEUE,    /* the key is too long to be a queue key: no such queue */
} mpistore__status_t;

#endif /* MPISTORE_STATUS_H */
