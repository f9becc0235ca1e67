import sys

from vqa.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
