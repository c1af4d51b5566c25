from kawal.cli import main

main()
