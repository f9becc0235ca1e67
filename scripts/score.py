import sys

from vqa.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
