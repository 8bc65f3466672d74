/* loop.c: placeholder */
