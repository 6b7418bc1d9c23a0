"""The agent: lives one scenario's working day inside its resource group, then cleans up.

It runs in the Container Apps Job that components/agent.py declares, as the scenario's own service
principal. ``runner.run_agent`` is the loop; ``haymaker.cli.agent`` is ``haymaker agent plan|run``.
"""
