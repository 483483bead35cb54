"""`python predict.py [overrides]` from the project root.

The code is in src/{{cookiecutter.package_name}}/predict.py.
"""

from {{cookiecutter.package_name}}.predict import main

if __name__ == "__main__":
    main()
