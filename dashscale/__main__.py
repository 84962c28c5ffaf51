from dashscale.start import main

main()
