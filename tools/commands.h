#ifndef VEIL_TOOLS_COMMANDS_H
#define VEIL_TOOLS_COMMANDS_H
/* One function per subcommand; argv excludes "veil" and the subcommand name. */
int veil_cmd_bench(int argc, char **argv);
int veil_cmd_compile(int argc, char **argv);
int veil_cmd_info(int argc, char **argv);
int veil_cmd_predict(int argc, char **argv);
int veil_cmd_client(int argc, char **argv);
int veil_cmd_keygen(int argc, char **argv);
int veil_cmd_encrypt(int argc, char **argv);
int veil_cmd_run(int argc, char **argv);
int veil_cmd_decrypt(int argc, char **argv);
#endif
