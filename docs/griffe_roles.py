"""Griffe extension for the API reference: the docstrings are written with reST roles
(:func:`particles.sweep`, :class:`Trajectory`) and double backticks; mkdocstrings renders
them as Markdown, so each role becomes inline code."""

import re

import griffe

ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj|exc):`~?([^`]+)`")


class ReSTRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
