/* svm.c: placeholder */
