"""The data: what a record is and how images become records.

`schema` names the TFRecord features and the domains, `preprocess` is the Beam job (decode,
validate, resize, reject, fit the colour-transfer statistics), `sample_datasets` generates
the bundled sample datasets, and `fingerprint` keys a preprocessed split by its content.
"""
