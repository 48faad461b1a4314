"""What a student is: a teacher's model cut to some of its layers, its lineage, card and shipped form.

Why its own folder and not `distill/`: the embedded shipped student (`assets`) is rebuilt from its teacher with
`make_student` and `shipped.reassemble_student`, while `distill/` loads its teacher and corpus through `assets`.
Student construction therefore sits below `assets` and distillation above it, so neither imports the other
back. `layers` builds a student from kept layers, `card` writes its model card, `shipped` packs and rebuilds
the shipped form, `weights_hash` names which teacher it was cut from.
"""
