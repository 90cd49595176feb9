def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", help="rewrite the expected files of golden tests")
