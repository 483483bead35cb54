"""`python compare.py [run or sweep folders] [--sort METRIC]` from the project root.

The code is in src/{{cookiecutter.package_name}}/compare.py.
"""

from {{cookiecutter.package_name}}.compare import main

if __name__ == "__main__":
    main()
