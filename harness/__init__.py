"""What the template's tests stand on, one module per concern.

commands   run a command to completion, its output in the failure message
template   this repository: cookiecutter.json's choices, baking a project
processes  start and stop native servers as whole process groups
mariadb    a throwaway MariaDB server for the benchmark's native stack
services   each baked service with test values: one registry, one signature
native     the benchmark's launcher: a baked stack on loopback, no Docker
debian     this host's Debian mirror, for the engine and the stand-in images
engine     a private Docker Engine that leaves nothing behind
standins   base images built from Debian's packages under the official names
compose    a baked project brought up by Compose on that engine
images     a baked project's images, one `docker run` at a time (tier 3)
mysql      a throwaway MySQL server in the mysql image (tier 4)
"""
