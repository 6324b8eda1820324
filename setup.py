"""asd-jax: JAX/Flax anomalous sound detection for DCASE 2026 Task 2 (BEATs + AudioMAE, LoRA)."""
from setuptools import find_packages, setup

setup(
    name='asd-jax',
    version='0.1.0',
    description=__doc__,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10,<3.13',
    # configs/ and benchmarks/ stay top-level folders of the repository (what users browse)
    # but install inside the package, as asd_jax.configs (named by --config=NAME) and
    # asd_jax.benchmarks (asd-jax bench); research/ is never installed.
    packages=find_packages(include=['asd_jax', 'asd_jax.*', 'checkpoints_convert',
                                    'checkpoints_convert.*']) + ['asd_jax.configs',
                                                                 'asd_jax.benchmarks'],
    package_dir={'asd_jax.configs': 'configs', 'asd_jax.benchmarks': 'benchmarks'},
    # The shipped tiny encoders (converted-checkpoint folders) and their model card.
    package_data={'asd_jax.pretrained': ['MODEL_CARD.md', '*.png', '*/config.json',
                                         '*/params/*', '*/params/*/*', '*/params/*/*/*']},
    install_requires=[
        'jax>=0.8,<0.11',  # jax.enable_x64 as a context (audio.logmel)
        'flax>=0.10.4,<0.13',
        'optax>=0.2.4,<0.3',
        'orbax-checkpoint>=0.11,<0.13',
        'grain>=0.2.10,<0.3',
        'numpy>=1.26,<3',
        'scipy>=1.11',
        'scikit-learn>=1.4,<2',
        'librosa>=0.10.2,<0.12',
        'soundfile>=0.12',
        'soxr>=0.3',
        'absl-py>=2.0',
        'ml_collections>=0.1.1',
        'tqdm>=4.60',
        'matplotlib>=3.7',
    ],
    extras_require={
        # Converting official checkpoints and the PyTorch side of the benchmark need torch.
        'torch': ['torch>=2.1'],
        'test': ['pytest>=7.4'],
    },
    entry_points={'console_scripts': ['asd-jax=asd_jax.cli.main:main']},
)
