"""`python eval.py [overrides]` from the project root.

The code is in src/{{cookiecutter.package_name}}/eval.py.
"""

from {{cookiecutter.package_name}}.eval import main

if __name__ == "__main__":
    main()
