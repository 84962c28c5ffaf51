from dashscale.cli import main

main()
