from jupyter_workflows.cli import main

main()
