// SPDX-License-Identifier: MIT
/* syscall-cost: per-call cost of a few syscalls, to measure what the syscall
 * hooks add. Build: cc -O2 -o /tmp/syscall-cost tools/syscall-cost.c; run once
 * without and once with hades-driver running. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(void){
  int fd=open("/dev/null",O_WRONLY); char c=0; int p[2]; pipe(p);
  double t=now(); for(int i=0;i<2000000;i++) write(fd,&c,1); double w=now()-t;
  t=now(); for(int i=0;i<500000;i++){ write(p[1],&c,1); read(p[0],&c,1);} double pr=now()-t;
  t=now(); for(int i=0;i<300000;i++){int f=open("/etc/hostname",O_RDONLY); close(f);} double o=now()-t;
  t=now(); for(int i=0;i<2000000;i++) getppid(); double g=now()-t;
  printf("write(/dev/null) %.0f ns  pipe w+r %.0f ns  open+close %.0f ns  getppid %.0f ns\n", w/2e6*1e9, pr/5e5*1e9, o/3e5*1e9, g/2e6*1e9);
}
