"""`python train.py [overrides]` from the project root.

The code is in src/{{cookiecutter.package_name}}/train.py.
"""

from {{cookiecutter.package_name}}.train import main

if __name__ == "__main__":
    main()
