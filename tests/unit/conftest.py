import pytest


@pytest.fixture(autouse=True)
def private_state_root(tmp_path_factory, monkeypatch):
    """Unit tests never touch a real state root (/var/lib/azlab as root): locks and keys go to a temp folder."""
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path_factory.mktemp("state")))
