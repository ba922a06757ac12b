"""``energywatch prove ...``: the proving ground (issue 8), suites that try to break EnergyWatch
on purpose and say by how much it held. Each command runs against the local stack, reports a
rich table and writes its figures as JSON to ``benchmarks/results/``.

Commands are added to this sub-app by the modules that implement them.
"""

import typer

from energywatch import prove_fault_commands, prove_security_commands

app = typer.Typer(
    help="The proving ground (issue 8): fuzzing, hostile clients, security checks, faults, "
    "soak. Figures as JSON in benchmarks/results/.",
    no_args_is_help=True,
)

app.command("fuzz")(prove_security_commands.fuzz)
app.command("hostile")(prove_security_commands.hostile)
app.command("security")(prove_security_commands.security)
app.command("faults")(prove_fault_commands.faults)
app.command("soak")(prove_fault_commands.soak)
