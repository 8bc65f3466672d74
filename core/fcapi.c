/* fcapi.c: placeholder */
