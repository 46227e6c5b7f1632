#!/bin/sh
# Entry point of the Upward image: the first argument names what to run.
set -eu

usage() {
  cat <<'USAGE'
usage: <image> SERVICE | upward ARGS...
  matching | sessions | feedback | notifications   run that service (python -m services.<name>)
  welcome                                          run the kit's example service
  upward ARGS...                                   the upward command-line tool, e.g.
                                                   upward deploy prepare --service matching
USAGE
}

command="${1:-help}"
case "$command" in
  matching|sessions|feedback|notifications)
    exec python -m "services.$command"
    ;;
  welcome)
    exec python -m examples.welcome_service
    ;;
  upward)
    shift
    exec upward "$@"
    ;;
  help|-h|--help)
    usage
    ;;
  *)
    usage >&2
    exit 64
    ;;
esac
