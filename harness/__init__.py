"""What the template's tests stand on, one module per concern.

commands   run a command to completion, its output in the failure message
template   this repository: cookiecutter.json's choices, baking a project
processes  a server outside Docker as one process group; free ports
services   each baked service with test values: one registry, one signature
debian     this host's Debian mirror, for the engine and the stand-in images
engine     a private Docker Engine that leaves nothing behind
standins   base images built from Debian's packages under the official names
compose    a baked project brought up by Compose on that engine
images     a baked project's images, one `docker run` at a time (tier 3)
mysql      a throwaway MySQL server in the mysql image (tier 4)
"""
