/* bitlens.c: the workbench (GUI) entry point
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <gtk/gtk.h>

#include "bl-application.h"
#include "bl-cli.h"
#ifdef BITLENS_HAVE_CUDA
#include "bl-cuda-backend.h"
#endif

/* Without a display the workbench cannot start; the same numbers come from bitlens-cli. */
static int
print_cli_help (const char *model)
{
  g_printerr ("bitlens: no display to open a window on (neither $DISPLAY nor $WAYLAND_DISPLAY works).\n"
              "\n"
              "The same numbers are available from the command line:\n"
              "  bitlens-cli info %s\n"
              "  bitlens-cli formats\n"
              "  bitlens-cli quantize-stats %s --format mxfp4 --format int4:g128:sym\n"
              "  bitlens-cli eval %s --text brown:test\n"
              "\n"
              "Run 'bitlens-cli --help' for every command, or start bitlens inside a desktop session\n"
              "(or under xvfb-run) to get the workbench.\n",
              model, model, model);
  return 1;
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *model = bl_cli_default_model_path ();
  g_autoptr(BlApplication) app = NULL;

  if (!gtk_init_check ())
    return print_cli_help (model);
#ifdef BITLENS_HAVE_CUDA
  /* "cuda" for the backend preference; "auto" tries it first */
  bl_backend_cuda_register ();
#endif

  app = bl_application_new (model, G_APPLICATION_DEFAULT_FLAGS);
  return g_application_run (G_APPLICATION (app), argc, argv);
}
