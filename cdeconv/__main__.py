"""Command line: ``python -m cdeconv`` (also installed as ``cdeconv``)."""
import argparse
import sys


def _cmd_info(args):
    from . import show_config
    show_config()
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cdeconv",
        description="cdeconv: fast transposed convolution for the CPU with TensorFlow's "
                    "API. Subcommands below; 'cdeconv SUBCOMMAND --help' for details.")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    p = sub.add_parser("info", help="show the build and runtime configuration "
                                    "(= cdeconv.show_config()); paste it into bug reports")
    p.set_defaults(func=_cmd_info)
    from . import _bench
    p = sub.add_parser("bench", help="time conv2d_transpose on the workload suite against "
                                     "scipy's sgemm and the installed peers (PyTorch, "
                                     "TensorFlow, ONNX Runtime); --help explains the table")
    _bench.build_parser(p)      # description, options and how to read the table
    p.set_defaults(func=_bench.run)
    from . import _visualize_cli
    p = sub.add_parser("visualize", help="DeconvNet projections and occlusion maps as PNG "
                                         "(bundled demo network by default)")
    _visualize_cli.build_parser(p)
    p.set_defaults(func=_visualize_cli.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
