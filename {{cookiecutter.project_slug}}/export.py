"""`python export.py [overrides]` from the project root.

The code is in src/{{cookiecutter.package_name}}/export.py.
"""

from {{cookiecutter.package_name}}.export import main

if __name__ == "__main__":
    main()
