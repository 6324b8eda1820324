"""The shared fixtures (../shared/fixtures) are the oracle of every parity test: on CI their
absence fails the run instead of skipping the comparisons with the official code."""
import pytest

from tests import conftest


def test_a_missing_fixture_fails_under_ci_and_skips_elsewhere(monkeypatch):
  monkeypatch.setenv('CI', 'true')
  with pytest.raises(pytest.fail.Exception, match='CI=true: parity with the official code'):
    conftest.fixture_path('no_such_fixture.npz')
  monkeypatch.delenv('CI')
  with pytest.raises(pytest.skip.Exception, match='no_such_fixture.npz is absent'):
    conftest.fixture_path('no_such_fixture.npz')


def test_the_fixtures_of_the_parity_tests_are_there_on_ci():
  """Every fixture the parity tests read; under CI=true a missing one fails here too."""
  for name in ('beats_small.pt', 'beats_small_io.npz', 'audiomae_small_pretrained.pth',
               'audiomae_small_io.npz'):
    conftest.fixture_path(name)
