/* What the specnet command says about itself: `specnet --help`, `specnet COMMAND
 * --help` and `specnet --version` (help.c). main.c decides when; this prints. */
#ifndef SPECNET_CLI_HELP_H
#define SPECNET_CLI_HELP_H

#include <stdio.h>

/* The overview: every command in one line, the options, exit codes. */
void print_help(FILE *out);
/* One command: usage, what it does, every option with its default, examples.
 * Returns 0, or -1 (printing nothing) when cmd is not a command help knows. */
int print_command_help(const char *cmd, FILE *out);
/* specnet's version, then the LLVM, OpenBLAS and host CPU it runs with. */
void print_version(FILE *out);

#endif
