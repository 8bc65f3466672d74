/*
 * base.h - the clocks every layer of the core reads (base.c). The VM-name rule
 * and string vectors are public (smartvm.h).
 */
#ifndef SVM_BASE_H
#define SVM_BASE_H

#include <stdint.h>

uint64_t svm_now_ns(void);      /* CLOCK_MONOTONIC */
int64_t svm_wall_ns(void);      /* CLOCK_REALTIME */

#endif
