"""cyclegan_tfx."""
