/* vmm.c: placeholder */
