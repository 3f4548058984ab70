from mobip.cli import main

main()
