/* vm.c: placeholder */
