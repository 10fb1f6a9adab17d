from hdrfix.cli import main

main()
