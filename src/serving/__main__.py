from serving.command_line import main

main()
