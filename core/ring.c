/* ring.c: placeholder */
