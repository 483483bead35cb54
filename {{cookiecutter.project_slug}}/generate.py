"""`python generate.py ckpt_path=... prompt="def "` from the project root.

The code is in src/{{cookiecutter.package_name}}/generate.py.
"""

from {{cookiecutter.package_name}}.generate import main

if __name__ == "__main__":
    main()
